"""What a user's ComfyUI shows of the pack: /object_info of a real server lists every node, each in the
pack's namespace and category, documented (description, a tooltip on every input), and the pack
imported without errors."""
import pytest

from harness import PACK_FOLDER, PACK_MODULE, declared_node_ids, pack_nodes

pytestmark = pytest.mark.server


def test_pack_imports_without_errors(comfy, object_info):
    assert not comfy.pack_import_failed(), f"ComfyUI logged IMPORT FAILED for the pack\n{comfy.log_tail(80)}"
    signs = ("Cannot import", "Error while calling comfy_entrypoint")
    broken = [line for line in comfy.log_text().splitlines()
              if f"custom_nodes/{PACK_FOLDER}" in line and any(sign in line for sign in signs)]
    assert not broken, "\n".join(broken)
    assert pack_nodes(object_info), f"no node in /object_info has python_module {PACK_MODULE}"


def test_node_ids_and_categories_are_namespaced(object_info):
    problems = []
    for name, info in pack_nodes(object_info).items():
        if not name.startswith("Likeness"):
            problems.append(f"{name}: node id does not start with 'Likeness'")
        if not str(info.get("category", "")).startswith("Likeness/"):
            problems.append(f"{name}: category {info.get('category')!r} is not under 'Likeness/'")
        if not str(info.get("display_name") or "").strip():
            problems.append(f"{name}: no display name")
    assert not problems, "\n".join(problems)


def test_every_node_has_a_description(object_info):
    empty = [name for name, info in pack_nodes(object_info).items() if not str(info.get("description") or "").strip()]
    assert not empty, f"nodes without a description: {empty}"


def test_every_input_has_a_tooltip(object_info):
    missing = []
    for name, info in pack_nodes(object_info).items():
        for section in ("required", "optional"):  # "hidden" inputs are not shown to users
            for input_name, spec in info.get("input", {}).get(section, {}).items():
                options = spec[1] if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict) else {}
                if not str(options.get("tooltip") or "").strip():
                    missing.append(f"{name}.{input_name}")
    assert not missing, f"inputs without a tooltip: {missing}"


def test_every_node_in_the_sources_is_registered(object_info):
    """A node class written in nodes/ but left out of the extension's node list never reaches users."""
    declared = declared_node_ids()
    served = set(pack_nodes(object_info))
    assert declared, "no node_id=\"Likeness...\" found in nodes/*.py"
    assert served == declared, (f"declared in nodes/ but not served: {sorted(declared - served)}; "
                                f"served but not found in nodes/: {sorted(served - declared)}")
