"""pytest wiring for the three test layers.

  tests/unit/     pure functions and models; no ComfyUI process (nothing here starts one unless asked)
  tests/server/   a real ComfyUI subprocess with the pack linked in (marker `server`, fixture `comfy`)
  tests/browser/  the real ComfyUI frontend in Debian's Chromium against that server (marker `browser`)

One ComfyUI server is shared by the whole session and started only when a test asks for `comfy`.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# scripts/ holds comfy_runner, tests/fixtures the tiny-weight writers (the repo root itself is on sys.path
# through pyproject's `pythonpath`).
for _folder in (REPO / "scripts", REPO / "tests" / "fixtures"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import harness  # noqa: E402
from comfy_runner import ComfyError, ComfyServer  # noqa: E402

SERVER_KEY = pytest.StashKey[ComfyServer]()


def pytest_addoption(parser):
    parser.addoption("--keep-comfy-log", action="store_true",
                     default=os.environ.get("LIKENESS_KEEP_LOGS", "") not in ("", "0"),
                     help=f"copy the ComfyUI server log to {harness.TEST_OUTPUT}/comfyui.log "
                          "(also: LIKENESS_KEEP_LOGS=1)")


class RepoRootIsNotATestPackage:
    """The repo root's __init__.py is the pack's ComfyUI entry point (it imports comfy_api, which only
    exists inside ComfyUI). pytest would collect the root as a Package and import that file before any
    test; collecting it as a plain directory keeps every layer runnable outside ComfyUI. Registered as a
    plugin, not as a conftest hook, because pytest asks the root's parent directory how to collect it.
    (Keep tests/ without an __init__.py for the same reason.)"""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path, parent):
        if path == REPO:
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_configure(config):
    # The `server` and `browser` markers are declared in pyproject.toml ([tool.pytest.ini_options]).
    if not config.pluginmanager.has_plugin("likeness-repo-root"):
        config.pluginmanager.register(RepoRootIsNotATestPackage(), "likeness-repo-root")


@pytest.fixture(scope="session")
def comfy(tmp_path_factory, request):
    """A started ComfyServer (scripts/comfy_runner.py) with the pack linked into its custom_nodes, and tiny
    stand-ins for the converted checkpoints the shipped workflows name (diffusion backbones, Face2Diffusion,
    a Stable Diffusion 1.x checkpoint)."""
    from diffusion_weights import write_workflow_stand_ins
    from identity_weights import write_identity_stand_ins

    server = ComfyServer(base=tmp_path_factory.mktemp("comfy"))
    request.config.stash[SERVER_KEY] = server
    try:
        write_workflow_stand_ins(server.base / "models" / "likeness" / "diffusion")
        write_identity_stand_ins(server.base / "models")
        try:
            server.start()
        except ComfyError as e:
            pytest.fail(f"could not start ComfyUI: {e}", pytrace=False)
        yield server
    finally:
        server.stop()
        if request.config.getoption("--keep-comfy-log") and server.log_path.exists():
            harness.TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
            kept = harness.TEST_OUTPUT / "comfyui.log"
            shutil.copyfile(server.log_path, kept)
            harness.ARTIFACTS.append(f"ComfyUI log: {kept}")


@pytest.fixture(scope="session")
def object_info(comfy) -> dict:
    return comfy.object_info()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing server or browser test gets the tail of the server log in its report."""
    outcome = yield
    report = outcome.get_result()
    server = item.config.stash.get(SERVER_KEY, None)
    uses_server = item.get_closest_marker("server") or item.get_closest_marker("browser")
    if report.failed and server is not None and uses_server and call.when == "call":
        report.sections.append(("ComfyUI log", server.log_tail(40)))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    server = config.stash.get(SERVER_KEY, None)
    lines = list(harness.ARTIFACTS)
    if server is not None:
        lines.append(f"ComfyUI base directory (log: comfyui.log): {server.base}")
    if lines:
        terminalreporter.write_sep("-", "Likeness test artifacts")
        for line in lines:
            terminalreporter.write_line(line)
