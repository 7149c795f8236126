"""The shipped UI-format workflows work in the real ComfyUI frontend (1.32.9, served by the server): no
missing node types, the frontend's own conversion gives exactly the API twin the headless runner uses,
and queueing from the page runs to success. A screenshot of each is kept for review.

One Chromium run (check_workflows.mjs) checks all workflows; the tests below read its verdicts."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from comfy_runner import load_api_workflow, node_env, stage_inputs
from harness import ARTIFACTS, REPO, TEST_OUTPUT, WORKFLOW_TIMEOUT, browser_missing, in_ci, ui_workflows

pytestmark = pytest.mark.browser
SCRIPT = REPO / "tests" / "browser" / "check_workflows.mjs"


@pytest.fixture(scope="session")
def frontend_results(request, tmp_path_factory) -> dict:
    missing = browser_missing()
    if missing:  # checked before the server starts, so a machine without a browser skips at once
        if in_ci():
            pytest.fail(f"browser layer cannot run under CI: {missing}", pytrace=False)
        pytest.skip(f"browser layer not set up: {missing}")
    comfy = request.getfixturevalue("comfy")
    workflows = ui_workflows()
    for ui in workflows:  # the LoadImage files of each workflow, as the API layer stages them
        twin = ui.parent / "api" / ui.name
        if twin.is_file():
            stage_inputs(comfy, load_api_workflow(twin))
    shots = TEST_OUTPUT / "screenshots"
    for stale in shots.glob("*.png"):  # the folder shows this run only
        stale.unlink()
    results_path = tmp_path_factory.mktemp("browser") / "results.json"
    cmd = [shutil.which("node"), str(SCRIPT), comfy.url, str(shots), str(results_path), *map(str, workflows)]
    try:
        done = subprocess.run(cmd, env=node_env(), capture_output=True, text=True, check=False,
                              timeout=180 + WORKFLOW_TIMEOUT * len(workflows))
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"check_workflows.mjs timed out after {e.timeout:.0f} s\n{e.stderr or ''}\n{comfy.log_tail()}",
                    pytrace=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0 or not results_path.is_file():
        pytest.fail(f"check_workflows.mjs failed (exit {done.returncode})\n{done.stdout}\n{done.stderr}", pytrace=False)
    ARTIFACTS.append(f"frontend screenshots: {shots}")
    return json.loads(results_path.read_text())


@pytest.mark.parametrize("path", ui_workflows(), ids=lambda p: p.stem)
def test_workflow_in_frontend(frontend_results, path):
    result = frontend_results.get(path.stem)
    assert result is not None, f"check_workflows.mjs reported nothing for {path.name}"
    if result.get("screenshot"):
        print(f"screenshot: {result['screenshot']}")
    missing, dialogs, diff = result.get("missing"), result.get("load_dialogs"), result.get("diff")
    assert not missing, f"node types the frontend does not know: {missing}"
    assert not dialogs, f"dialogs shown on loading the workflow: {dialogs}"
    assert not diff, (f"the frontend converts it to a different prompt than workflows/api/{path.name}:\n  "
                      + "\n  ".join(diff))
    ok = result.get("status") == "success" and not result.get("error")
    assert ok, (f"run from the page: {result.get('status')}: {result.get('error')}\n"
                f"dialogs: {result.get('run_dialogs')}\npage errors: {result.get('page_errors')}")
    shot = result.get("screenshot")
    assert shot and Path(shot).is_file(), "no screenshot was written"
