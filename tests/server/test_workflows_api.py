"""Every shipped workflow runs headless on a real ComfyUI: its API-format twin (workflows/api/<name>.json)
is queued over HTTP with its input images staged, and each image output node must write plausible images."""
import uuid

import pytest

from comfy_runner import load_api_workflow, stage_inputs, vary_filename_prefixes
from harness import WORKFLOW_TIMEOUT, api_workflows, image_output_nodes, image_problem, ui_workflows

pytestmark = pytest.mark.server


def test_every_workflow_has_both_formats():
    """Users load workflows/<name>.json; the headless runner and these tests use workflows/api/<name>.json."""
    api = {p.stem for p in api_workflows()}
    ui = {p.stem for p in ui_workflows()}
    assert api, "no workflows/api/*.json"
    assert api == ui, (f"API format without a UI twin: {sorted(api - ui)}; "
                       f"UI format without an API twin: {sorted(ui - api)}")


@pytest.mark.parametrize("path", api_workflows(), ids=lambda p: p.stem)
def test_api_workflow_runs(comfy, object_info, path):
    # A fresh tag per run: ComfyUI serves an identical prompt from its cache and writes nothing.
    prompt = vary_filename_prefixes(load_api_workflow(path), f"api_{uuid.uuid4().hex[:8]}")
    stage_inputs(comfy, prompt)
    entry = comfy.run(prompt, timeout=WORKFLOW_TIMEOUT)

    written = comfy.outputs_by_node(entry, types=("output", "temp"))
    expected = image_output_nodes(prompt, object_info)
    assert expected, f"{path.name} has no image output node (SaveImage/PreviewImage)"
    silent = [f"{i} ({prompt[i]['class_type']})" for i in expected if not written.get(i)]
    assert not silent, f"output nodes that produced no image: {silent}"
    problems = [p for files in written.values() for p in map(image_problem, files) if p]
    assert not problems, "\n".join(problems)
