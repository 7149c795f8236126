#!/usr/bin/env bash
# The README's test command: the same set-up plus the browser layer, then the whole test suite
# (unit tests on models/, a real ComfyUI server on loopback, the real frontend in chromium).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --browser
exec .venv/bin/python -m pytest "$@"
