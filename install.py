"""Run by ComfyUI-Manager after cloning (and by scripts/setup.sh).

Installs what requirements.txt cannot declare safely: mediapipe 0.10.21, the last release that ships
the face detector and face landmark .tflite files inside its wheel. Its declared pins (numpy<2,
protobuf<5) would downgrade a ComfyUI environment, and the pack never imports mediapipe (it reads
the .tflite files with its own PyTorch runtime), so it is installed with --no-deps.
"""
import importlib.util
import subprocess
import sys

MEDIAPIPE = "mediapipe==0.10.21"


def main() -> int:
    if importlib.util.find_spec("mediapipe") is not None:
        return 0
    if sys.version_info >= (3, 13):
        print(f"[Likeness] {MEDIAPIPE} has no wheel for Python {sys.version_info.major}.{sys.version_info.minor}; "
              "copy face_detection_short_range.tflite, face_detection_full_range_sparse.tflite and "
              "face_landmark.tflite into ComfyUI/models/likeness/mediapipe instead (see README).")
        return 0
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", MEDIAPIPE]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
