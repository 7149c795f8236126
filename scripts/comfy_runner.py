#!/usr/bin/env python3
"""Drive a real ComfyUI process over HTTP on loopback: start it with the pack linked in, run
API-format workflows, collect the images they write.

Used by the README's headless command and by the server/browser test layers, so that both run the
pack exactly the way a user's ComfyUI loads it (custom_nodes/<folder>, real /prompt validation,
real execution and caching). Only the standard library is used, so any Python can run the CLI.

  python scripts/comfy_runner.py run WORKFLOW_API_JSON [--input FILE ...] [--output-dir DIR]
                                     [--set NODE.INPUT=VALUE ...]
  python scripts/comfy_runner.py export-ui API_JSON UI_JSON
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from collections.abc import Iterable
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PACK_FOLDER = "comfyui-likeness"  # folder name under custom_nodes/ -> python_module "custom_nodes.comfyui-likeness"
PACK_MODULE = f"custom_nodes.{PACK_FOLDER}"
NODE_MODULES = REPO / ".likeness" / "node" / "node_modules"  # playwright-core, installed by scripts/setup.sh --browser
# Where workflows' input images are looked up when they are not given explicitly.
INPUT_SEARCH_DIRS = (REPO / "assets", REPO / "tests" / "fixtures", REPO / "tests" / "fixtures" / "faces")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SETTINGS = {"Comfy.TutorialCompleted": True}  # keeps the frontend's templates dialog off the canvas


class ComfyError(RuntimeError):
    """A failure of the server or of a prompt, with the details needed to read it in a test log."""


def comfyui_dir() -> Path:
    """The ComfyUI checkout: $COMFYUI_PATH, else the one scripts/setup.sh recorded."""
    env = os.environ.get("COMFYUI_PATH")
    if env:
        path = Path(env)
    else:
        record = REPO / ".likeness" / "comfyui_path"
        if not record.is_file():
            raise ComfyError(f"no ComfyUI: set COMFYUI_PATH or run scripts/setup.sh (missing {record})")
        path = Path(record.read_text().strip())
    if not (path / "main.py").is_file():
        raise ComfyError(f"{path} is not a ComfyUI checkout (no main.py)")
    return path.resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when the process that started the server dies, so a
    killed test run or CLI leaves no ComfyUI behind. (The signal follows the starting thread: start
    servers from a thread that outlives them, e.g. the main thread.)"""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


class ComfyServer:
    """A ComfyUI subprocess with its own base directory (models/, custom_nodes/, input/, output/, temp/, user/).

    Use as a context manager; it is stopped (terminate, then kill) on exit.
    """

    def __init__(self, comfyui: str | Path | None = None, python: str | None = None, base: str | Path | None = None,
                 port: int | None = None, pack: str | Path | None = REPO, models_dir: str | Path | None = None,
                 start_timeout: float = float(os.environ.get("LIKENESS_SERVER_TIMEOUT", "120")),
                 extra_args: Iterable[str] = ()):
        self.comfyui = Path(comfyui).resolve() if comfyui else comfyui_dir()
        self.python = python or sys.executable
        self._tmp = None if base else tempfile.TemporaryDirectory(prefix="likeness-comfy-")
        self.base = Path(base or self._tmp.name).resolve()
        self._auto_port = port is None
        self.port = port or free_port()
        self.pack = Path(pack).resolve() if pack else None
        self.models_dir = Path(models_dir).resolve() if models_dir else None
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = uuid.uuid4().hex
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    # paths -------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.base / "comfyui.log"

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return f"--- {self.log_path} (last {lines} lines) ---\n{tail(self.log_text(), lines)}"

    def pack_import_failed(self) -> bool:
        """ComfyUI logs '(IMPORT FAILED): <path>' for a pack whose import or comfy_entrypoint failed."""
        return any("IMPORT FAILED" in line and line.rstrip().endswith(PACK_FOLDER)
                   for line in self.log_text().splitlines())

    # lifecycle ---------------------------------------------------------------------------------
    def _prepare_base(self) -> None:
        for sub in ("custom_nodes", "input", "output", "temp", "user/default"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        models = self.base / "models"
        if self.models_dir and not models.exists():
            models.symlink_to(self.models_dir, target_is_directory=True)
        models.mkdir(exist_ok=True)
        if self.pack:
            link = self.base / "custom_nodes" / PACK_FOLDER
            if link.is_symlink() or link.exists():
                if link.resolve() != self.pack:
                    raise ComfyError(f"{link} exists and is not a link to {self.pack}")
            else:
                link.symlink_to(self.pack, target_is_directory=True)
        settings = self.base / "user" / "default" / "comfy.settings.json"
        current = json.loads(settings.read_text()) if settings.exists() else {}
        settings.write_text(json.dumps({**current, **SETTINGS}, indent=2))

    def start(self) -> "ComfyServer":
        self._prepare_base()
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_ready()
                break
            except BaseException as e:
                self.stop()
                # A port picked by free_port() can be taken before ComfyUI binds it: pick another.
                if (isinstance(e, ComfyError) and attempt < 2 and self._auto_port
                        and "address already in use" in tail(self.log_text(), 15).lower()):
                    self.port = free_port()
                    self.url = f"http://127.0.0.1:{self.port}"
                    continue
                raise
        if self.pack and self.pack_import_failed():
            msg = f"ComfyUI could not import the pack {self.pack} (IMPORT FAILED)\n{self.log_tail(80)}"
            self.stop()
            raise ComfyError(msg)
        return self

    def _spawn(self) -> None:
        cmd = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--disable-auto-launch",
               "--database-url", f"sqlite:///{self.base / 'user' / 'comfyui.db'}", *self.extra_args]
        self._log_file = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, cwd=self.comfyui, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise ComfyError(f"ComfyUI exited with code {self.proc.returncode} while starting: "
                                 f"{' '.join(self.proc.args)}\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/object_info", timeout=10) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ComfyError(f"ComfyUI did not answer /object_info within {self.start_timeout:.0f} s\n"
                                 f"{self.log_tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def cleanup(self) -> None:
        """Stop and delete the base directory if this object created it."""
        self.stop()
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # HTTP --------------------------------------------------------------------------------------
    def request(self, path: str, body: Any = None, timeout: float = 30) -> Any:
        """GET (or POST JSON when body is given) and decode the JSON answer; HTTP errors raise ComfyError."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read().decode(errors="replace")
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw
            raise ComfyError(f"{'POST' if data else 'GET'} {path} -> HTTP {e.code}: {raw[:2000]}", e.code,
                             payload) from None
        except (urllib.error.URLError, OSError) as e:
            alive = self.proc is None or self.proc.poll() is None
            raise ComfyError(f"{path}: {e} (server {'running' if alive else 'exited'})\n{self.log_tail()}") from None

    def object_info(self) -> dict:
        return self.request("/object_info")

    def submit(self, prompt: dict, extra_data: dict | None = None) -> str:
        """Queue an API-format prompt; a validation failure raises with the per-node errors spelled out."""
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        try:
            reply = self.request("/prompt", body)
        except ComfyError as e:
            if len(e.args) == 3 and e.args[1] == 400:
                raise ComfyError("prompt rejected: " + format_prompt_error(e.args[2])) from None
            raise
        if reply.get("node_errors"):  # some outputs were valid and were queued; the rest were not
            self.cancel(reply["prompt_id"])
            raise ComfyError("prompt partly rejected: " + format_prompt_error(reply))
        return reply["prompt_id"]

    def cancel(self, prompt_id: str) -> None:
        """Drop a queued prompt or interrupt it if it runs, so that it does not hold up the next one."""
        for path, body in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
            try:
                self.request(path, body)
            except ComfyError:
                pass

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        """Poll /history until the prompt finished; an execution error raises with its message and traceback."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.request(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") != "success":
                    raise ComfyError(f"prompt {prompt_id} failed: {format_status_error(status)}")
                return entry
            if self.proc is not None and self.proc.poll() is not None:
                raise ComfyError(f"ComfyUI exited (code {self.proc.returncode}) while running {prompt_id}\n"
                                 f"{self.log_tail()}")
            if time.monotonic() > deadline:
                queue = self.request("/queue")
                self.cancel(prompt_id)
                raise ComfyError(f"prompt {prompt_id} not finished after {timeout:.0f} s "
                                 f"(running: {len(queue.get('queue_running', []))}, "
                                 f"pending: {len(queue.get('queue_pending', []))})\n{self.log_tail()}")
            time.sleep(0.25)

    def run(self, prompt: dict, timeout: float = 300) -> dict:
        return self.wait(self.submit(prompt), timeout)

    # files -------------------------------------------------------------------------------------
    def outputs_by_node(self, entry: dict, types: tuple[str, ...] = ("output",)) -> dict[str, list[Path]]:
        """{node_id: [image paths]} from a history entry's ui outputs, for the given folder types."""
        roots = {"output": self.output_dir, "temp": self.base / "temp", "input": self.input_dir}
        found: dict[str, list[Path]] = {}
        for node_id, ui in entry.get("outputs", {}).items():
            for item in ui.get("images", []) if isinstance(ui, dict) else []:
                if isinstance(item, dict) and item.get("type") in types and "filename" in item:
                    found.setdefault(node_id, []).append(
                        roots[item["type"]] / item.get("subfolder", "") / item["filename"])
        return found

    def output_files(self, entry: dict) -> list[Path]:
        """Images the prompt saved to the output folder (type "output")."""
        return [p for paths in self.outputs_by_node(entry).values() for p in paths]

    def copy_input(self, path: str | Path, name: str | None = None) -> str:
        """Copy a file into the server's input folder; returns the name a LoadImage node refers to."""
        name = name or Path(path).name
        dest = self.input_dir / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        return name


# prompts ---------------------------------------------------------------------------------------
def format_prompt_error(payload: Any) -> str:
    """Readable text for /prompt's {"error": ..., "node_errors": {id: {class_type, errors: [...]}}}."""
    if not isinstance(payload, dict):
        return str(payload)
    lines = []
    err = payload.get("error")
    if isinstance(err, dict):
        lines.append(f"{err.get('message', '')} {err.get('details', '')}".strip())
    elif err:
        lines.append(str(err))
    for node_id, info in (payload.get("node_errors") or {}).items():
        for e in info.get("errors", []):
            lines.append(f"  node {node_id} ({info.get('class_type')}): {e.get('message')}: {e.get('details')}")
    return "\n".join(lines)


def format_status_error(status: dict) -> str:
    for event, data in status.get("messages", []):
        if event == "execution_error":
            trace = "".join(data.get("traceback", []))
            return (f"node {data.get('node_id')} ({data.get('node_type')}): {data.get('exception_type')}: "
                    f"{data.get('exception_message')}\n{tail(trace, 25)}")
        if event == "execution_interrupted":
            return f"interrupted at node {data.get('node_id')} ({data.get('node_type')})"
    return json.dumps(status)


def load_api_workflow(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None) -> dict:
    """Read an API-format workflow and apply {node_id: {input: value}} overrides (unknown ids are an error)."""
    prompt = json.loads(Path(path).read_text())
    if not isinstance(prompt, dict) or not all(isinstance(n, dict) and "class_type" in n for n in prompt.values()):
        raise ComfyError(f"{path} is not an API-format workflow ({{node_id: {{class_type, inputs}}}}); "
                         "UI-format files are converted by the frontend (export with 'Export (API)')")
    for node_id, values in (overrides or {}).items():
        if str(node_id) not in prompt:
            raise ComfyError(f"{path}: no node {node_id} to override (nodes: {', '.join(prompt)})")
        prompt[str(node_id)].setdefault("inputs", {}).update(values)
    return prompt


def vary_filename_prefixes(prompt: dict, tag: str) -> dict:
    """Append a tag to every filename_prefix so a re-sent prompt is not served from ComfyUI's cache."""
    for node in prompt.values():
        value = node.get("inputs", {}).get("filename_prefix")
        if isinstance(value, str):
            node["inputs"]["filename_prefix"] = f"{value}_{tag}"
    return prompt


def input_images(prompt: dict, object_info: dict) -> set[str]:
    """Names of input-folder images a prompt refers to: literal values of image-upload combos (LoadImage.image)."""
    names = set()
    for node in prompt.values():
        spec = object_info.get(node.get("class_type"), {}).get("input", {})
        declared = {**spec.get("required", {}), **spec.get("optional", {})}
        for name, value in node.get("inputs", {}).items():
            decl = declared.get(name)
            options = decl[1] if isinstance(decl, list) and len(decl) > 1 and isinstance(decl[1], dict) else {}
            if isinstance(value, str) and (options.get("image_upload") or (
                    value.lower().endswith(IMAGE_EXTENSIONS) and isinstance(decl, list) and decl
                    and (isinstance(decl[0], list) or decl[0] == "COMBO"))):
                names.add(value)
    return names


def stage_inputs(server: ComfyServer, prompt: dict, search_dirs: Iterable[Path] = INPUT_SEARCH_DIRS) -> list[str]:
    """Copy the images a prompt loads from the search dirs into the server's input folder (once)."""
    staged, missing = [], []
    search_dirs = list(search_dirs)
    for name in sorted(input_images(prompt, server.object_info())):
        if (server.input_dir / name).exists():
            continue
        source = next((d / name for d in search_dirs if (d / name).is_file()), None)
        if source is None:
            missing.append(name)
        else:
            staged.append(server.copy_input(source, name))
    if missing:
        raise ComfyError(f"input images {missing} are neither in {server.input_dir} nor in "
                         f"{', '.join(map(str, search_dirs))}")
    return staged


def parse_set(items: list[str]) -> dict[str, dict[str, Any]]:
    """--set NODE.INPUT=VALUE (VALUE read as JSON when it parses, else as a string)."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        node_id, dot, name = key.partition(".")
        if not sep or not dot or not node_id or not name:
            raise SystemExit(f"--set {item!r}: expected NODE.INPUT=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        overrides.setdefault(node_id, {})[name] = value
    return overrides


def unique_destination(path: Path) -> Path:
    n, candidate = 1, path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return candidate


def node_env() -> dict[str, str]:
    """Environment for tests/browser/*.mjs: playwright-core is found through NODE_PATH."""
    paths = [p for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    if str(NODE_MODULES) not in paths:
        paths.append(str(NODE_MODULES))
    return {**os.environ, "NODE_PATH": os.pathsep.join(paths), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}


# CLI -------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    prompt = load_api_workflow(args.workflow, parse_set(args.set))
    out_dir = Path(args.output_dir).resolve()
    with ComfyServer(models_dir=args.models_dir, start_timeout=args.start_timeout) as server:
        print(f"[comfy_runner] ComfyUI {server.url}, base {server.base}", file=sys.stderr)
        for path in args.input:
            server.copy_input(path)
        stage_inputs(server, prompt)
        started = time.monotonic()
        entry = server.run(prompt, timeout=args.timeout)
        print(f"[comfy_runner] finished in {time.monotonic() - started:.1f} s", file=sys.stderr)
        if not server.output_files(entry):
            raise ComfyError("the workflow finished but saved no image (it needs a SaveImage node)")
        # everything the run wrote to the output folder: images, and files such as saved face rigs
        files = sorted(p for p in server.output_dir.rglob("*") if p.is_file())
        for src in files:
            dest = unique_destination(out_dir / src.relative_to(server.output_dir))
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            print(dest)
    return 0


def cmd_export_ui(args: argparse.Namespace) -> int:
    node = shutil.which("node")
    if not node:
        raise ComfyError("node (Node.js >= 20) is not on PATH")
    script = REPO / "tests" / "browser" / "export_ui.mjs"
    with ComfyServer(start_timeout=args.start_timeout) as server:
        print(f"[comfy_runner] ComfyUI {server.url}, base {server.base}", file=sys.stderr)
        done = subprocess.run([node, str(script), server.url, str(Path(args.api_json).resolve()),
                               str(Path(args.ui_json).resolve())], env=node_env(), timeout=args.timeout, check=False)
        if done.returncode != 0:
            raise ComfyError(f"export_ui.mjs failed (exit {done.returncode})\n{server.log_tail(30)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start-timeout", type=float, default=float(os.environ.get("LIKENESS_SERVER_TIMEOUT", "120")),
                        help="seconds to wait for ComfyUI to answer (default 120)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an API-format workflow headless and copy its images out")
    run.add_argument("workflow", help="API-format workflow JSON (e.g. workflows/api/<name>.json)")
    run.add_argument("--input", action="append", default=[], metavar="FILE",
                     help="file copied into ComfyUI's input folder under its own name (repeatable)")
    run.add_argument("--output-dir", default=str(REPO / "output"), help="where the images go (default ./output)")
    run.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                     help="override a node input, e.g. --set 10.image=me.png --set 3.seed=7 (repeatable)")
    run.add_argument("--models-dir", help="use this folder as ComfyUI's models/ (default: an empty one)")
    run.add_argument("--timeout", type=float, default=1800, help="seconds the workflow may run (default 1800)")
    run.set_defaults(func=cmd_run)
    export = sub.add_parser("export-ui", help="turn an API-format workflow into a UI-format one via the real frontend")
    export.add_argument("api_json")
    export.add_argument("ui_json")
    export.add_argument("--timeout", type=float, default=300)
    export.set_defaults(func=cmd_export_ui)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ComfyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
