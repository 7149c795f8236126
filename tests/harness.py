"""Helpers shared by the server and browser test layers (the pytest wiring itself is in conftest.py).

Nothing here imports ComfyUI: the tests only talk to a real ComfyUI process over HTTP
(scripts/comfy_runner.py), so they see the pack exactly as a user's ComfyUI loads it.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from PIL import Image

from comfy_runner import NODE_MODULES, PACK_FOLDER, PACK_MODULE, REPO  # REPO etc. are re-exported for the tests

# LIKENESS_WORKFLOWS points the workflow tests at another folder of <name>.json + api/<name>.json pairs.
WORKFLOWS = Path(os.environ.get("LIKENESS_WORKFLOWS", REPO / "workflows")).resolve()
API_WORKFLOWS = WORKFLOWS / "api"
TEST_OUTPUT = Path(os.environ.get("LIKENESS_TEST_OUTPUT", REPO / ".likeness" / "test-output")).resolve()
WORKFLOW_TIMEOUT = float(os.environ.get("LIKENESS_WORKFLOW_TIMEOUT", "600"))
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
MIN_SIDE, MAX_SIDE = 16, 16384

# Files and folders tests produced that are worth a look after the run; conftest prints them at the end.
ARTIFACTS: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def api_workflows() -> list[Path]:
    return sorted(API_WORKFLOWS.glob("*.json"))


def ui_workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.json"))


def pack_nodes(object_info: dict) -> dict[str, dict]:
    """The nodes /object_info attributes to this pack (python_module custom_nodes.comfyui-likeness)."""
    return {name: info for name, info in object_info.items() if info.get("python_module") == PACK_MODULE}


def declared_node_ids() -> set[str]:
    """Node ids written in the pack's sources (node_id="Likeness..."), found without importing them."""
    pattern = re.compile(r"""node_id\s*=\s*["'](Likeness\w*)["']""")
    return {m for path in (REPO / "nodes").rglob("*.py") for m in pattern.findall(path.read_text())}


def image_output_nodes(prompt: dict, object_info: dict) -> list[str]:
    """Output nodes of a prompt that take an IMAGE input (SaveImage, PreviewImage, ...): each must show images."""
    found = []
    for node_id, node in prompt.items():
        info = object_info.get(node["class_type"], {})
        declared = {**info.get("input", {}).get("required", {}), **info.get("input", {}).get("optional", {})}
        if info.get("output_node") and any(isinstance(d, list) and d and d[0] == "IMAGE" for d in declared.values()):
            found.append(node_id)
    return found


def image_problem(path: Path) -> str | None:
    """Why a written image is not a plausible result (unreadable, absurd size, one flat colour), else None."""
    if not path.is_file():
        return f"{path} does not exist"
    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
            extrema = im.convert("RGB").getextrema()
    except Exception as e:  # noqa: BLE001 - any decoder error is the finding
        return f"{path} does not open with Pillow: {e}"
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        return f"{path} has an implausible size {w}x{h}"
    if all(lo == hi for lo, hi in extrema):
        return f"{path} is a single flat colour {tuple(lo for lo, _ in extrema)}"
    return None


def playwright_dirs() -> list[Path]:
    """Where node will look for playwright-core: $NODE_PATH entries, then .likeness/node/node_modules."""
    return [Path(p) for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p] + [NODE_MODULES]


def browser_missing() -> str | None:
    """What the browser layer lacks on this machine (None when it can run)."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (scripts/setup.sh --browser installs Debian's chromium)"
    if not shutil.which("node"):
        return "node (Node.js >= 20) is not on PATH"
    if not any((d / "playwright-core" / "package.json").is_file() for d in playwright_dirs()):
        return (f"playwright-core is in none of {', '.join(map(str, playwright_dirs()))} "
                "(scripts/setup.sh --browser installs it)")
    return None
