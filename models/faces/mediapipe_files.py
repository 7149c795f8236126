"""Finds mediapipe's face detector and face mesh .tflite files (Apache-2.0, shipped in its wheel).

Only the files are used, never the mediapipe package itself: it is located with importlib's finder,
which reads no mediapipe code, so its numpy/protobuf pins cannot break the environment.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

SHORT_RANGE_FILE = "face_detection_short_range.tflite"
FULL_RANGE_FILE = "face_detection_full_range_sparse.tflite"
FACE_MESH_FILE = "face_landmark.tflite"
# Where each file sits inside the mediapipe package.
_PACKAGE_SUBDIRS = {
    SHORT_RANGE_FILE: "modules/face_detection",
    FULL_RANGE_FILE: "modules/face_detection",
    FACE_MESH_FILE: "modules/face_landmark",
}


@dataclass(frozen=True)
class MediapipeModelFiles:
    short_range: Path  # BlazeFace, 128x128 input, faces within about 2 m
    full_range: Path  # BlazeFace, 192x192 input, faces within about 5 m
    face_mesh: Path  # 468-point face mesh, 192x192 input


def find_mediapipe_models(search_dirs: list[Path]) -> MediapipeModelFiles:
    """Each file from the first of `search_dirs` that holds it, else from the installed mediapipe package."""
    candidates = [Path(d) for d in search_dirs]
    package_root = _mediapipe_package_dir()
    found, searched = {}, []
    for name, subdir in _PACKAGE_SUBDIRS.items():
        dirs = candidates + ([package_root / subdir] if package_root is not None else [])
        searched.extend(d for d in dirs if d not in searched)
        found[name] = next((d / name for d in dirs if (d / name).is_file()), None)
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"mediapipe face model file(s) not found: {', '.join(missing)}. Needed: {', '.join(_PACKAGE_SUBDIRS)}. "
            f"Searched: {', '.join(str(d) for d in searched) or '(no folder)'}"
            f"{'' if package_root is not None else ' (the mediapipe package is not installed)'}. "
            "Get them with `pip install --no-deps mediapipe==0.10.21` (the files ship in its wheel; --no-deps keeps "
            "its numpy/protobuf pins out), or copy the three files into ComfyUI/models/likeness/mediapipe."
        )
    return MediapipeModelFiles(found[SHORT_RANGE_FILE], found[FULL_RANGE_FILE], found[FACE_MESH_FILE])


def _mediapipe_package_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
