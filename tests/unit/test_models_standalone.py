"""models/ must import, module by module, in a process where ComfyUI cannot be imported."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMFY_MODULES = ("comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "execution", "server",
                 "nodes", "node_helpers")

PROBE = r"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"ComfyUI module {name!r} imported from models/")
        return None

sys.meta_path.insert(0, Block())
import models
names = [m.name for m in pkgutil.walk_packages(models.__path__, "models.")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked
print(len(names))
"""


def test_every_models_module_imports_without_comfyui():
    out = subprocess.run([sys.executable, "-c", PROBE, ",".join(COMFY_MODULES)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 5  # the probe really walked the package


def test_models_use_only_relative_imports_of_the_pack():
    for path in (ROOT / "models").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            elif isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            else:
                continue
            for top in tops:
                assert top not in COMFY_MODULES + ("models",), f"{path.relative_to(ROOT)}:{node.lineno} imports {top}"
