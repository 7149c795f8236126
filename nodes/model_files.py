"""Where the pack's weights live: ComfyUI model folders registered with folder_paths.

Folders are appended, never replaced, so entries a user added in extra_model_paths.yaml (loaded
before custom nodes) keep working. Nothing is ever downloaded at run time.
"""
from __future__ import annotations

import os
from pathlib import Path

import folder_paths

# folder_paths key -> (sub-folder of ComfyUI/models, accepted file extensions)
MODEL_FOLDERS: dict[str, tuple[str, set[str]]] = {
    "likeness_mediapipe": (os.path.join("likeness", "mediapipe"), {".tflite"}),
    "likeness_rigs": (os.path.join("likeness", "rigs"), {".safetensors"}),
    "likeness_flame": (os.path.join("likeness", "flame"), {".safetensors", ".npz"}),
    "likeness_diffusion": (os.path.join("likeness", "diffusion"), {".safetensors"}),
    "likeness_face2diffusion": (os.path.join("likeness", "face2diffusion"), {".safetensors"}),
    "likeness_dlib": (os.path.join("likeness", "dlib"), {".dat"}),
    "insightface": ("insightface", {".onnx"}),
}
RIG_OUTPUT_SUBFOLDER = "likeness_rigs"  # Save Face Rig writes here, inside ComfyUI's output folder


def register_model_folders() -> None:
    for key, (sub, exts) in MODEL_FOLDERS.items():
        folder_paths.add_model_folder_path(key, os.path.join(folder_paths.models_dir, sub))
        paths, known = folder_paths.folder_names_and_paths[key]
        folder_paths.folder_names_and_paths[key] = (paths, set(known) | exts)
    # saved rigs are listed by Load Face Rig without the user moving them
    folder_paths.add_model_folder_path("likeness_rigs", rig_output_dir())


def rig_output_dir() -> str:
    return os.path.join(folder_paths.get_output_directory(), RIG_OUTPUT_SUBFOLDER)


def folder_dirs(key: str) -> list[Path]:
    """Every folder ComfyUI knows for `key`, default first, extra_model_paths.yaml entries included."""
    return [Path(p) for p in folder_paths.get_folder_paths(key)]
