"""requirements.txt (and requirements-train.txt, for the trainer) is what users pip-install into an existing
ComfyUI: in an environment with numpy 2, protobuf 6 and torch already installed (this venv), resolving it must
not replace any of them."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTECTED = {"numpy", "protobuf", "torch", "torchvision", "pillow", "safetensors"}


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-train.txt"])
def test_requirements_leave_the_comfyui_stack_alone(tmp_path, requirements):
    report = tmp_path / "report.json"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
                          "-r", str(REPO / requirements)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    would_install = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                     for item in json.loads(report.read_text())["install"]}
    touched = sorted(set(would_install) & PROTECTED)
    assert not touched, f"pip would replace {[(n, would_install[n]) for n in touched]}"


def test_requirements_do_not_list_packages_with_downgrading_pins():
    names = {line.split("=")[0].split(">")[0].split("<")[0].strip().lower()
             for line in (REPO / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert "mediapipe" not in names, "mediapipe pins numpy<2 and protobuf<5: it is installed by install.py with --no-deps"
    assert {"numpy", "safetensors", "tflite"} <= names
