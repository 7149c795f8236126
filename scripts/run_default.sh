#!/usr/bin/env bash
# The README's main job: set everything up, then run the pack's default workflow (fit the face rig,
# edit pose, expression and light, preview the edit on the photo with no diffusion weights) headless on
# the bundled portrait in a real ComfyUI, and print the paths of the images it wrote.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
exec .venv/bin/python scripts/comfy_runner.py run workflows/api/rig_preview_edit.json \
    --input assets/likeness_portrait.png --output-dir output "$@"
