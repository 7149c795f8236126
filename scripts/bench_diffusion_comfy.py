"""Per-step cost of the Diff-AE / DiffusionRig UNets inside ComfyUI's sampler vs the module called directly.

    .venv/bin/python scripts/bench_diffusion_comfy.py [--size tiny|full|both] [--steps N] [--repeats R]
                                                      [--threads N] [--cpu]

Runs ComfyUI in-process (no server) on the device ComfyUI picks (CUDA when present; --cpu forces the
CPU): the pack is loaded as a custom node, a converted file (the tiny test config, or full size with
random weights) goes through the pack's loader, and three ways of running the same UNet on the same
inputs are timed, interleaved in rotating order within every repetition so that drifting load on a
shared machine hits all of them alike:

  direct   the backbone module called N times (the floor)
  model    ComfyUI's BaseModel.apply_model N times: sigma scaling, c_concat, timestep conversion and
           the pack's Denoiser glue around the same module
  sampler  a CFGGuider (cfg 1, 'euler' = DDIM) sampling N steps; "step" is the steady cost between
           consecutive step callbacks, "call" the whole call divided by N (with the setup: condition
           processing, model loading checks)

Each figure is the median (and min) over the repetitions of wall time and of process CPU time per
step; on a CPU with one torch thread the CPU time is the steadier measure of the work done. Ratios
are against `direct` (goal <= 1.05). Torch threads are fixed (default 1). On CUDA every step is
synchronised so the wall times are the device's.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMFY = REPO / ".likeness" / "ComfyUI"
MODES = ("direct", "model", "sampler step", "sampler call")


def boot_comfy(cpu: bool):
    """ComfyUI's node machinery in this process, with the pack loaded; returns the pack's model glue.

    ComfyUI assumes CUDA unless told --cpu, so a torch without any accelerator gets --cpu as well."""
    import torch
    accelerated = (torch.cuda.is_available() or torch.backends.mps.is_available()
                   or (hasattr(torch, "xpu") and torch.xpu.is_available()))
    sys.argv = [sys.argv[0], *(["--cpu"] if cpu or not accelerated else [])]
    sys.path[:0] = [str(COMFY), str(REPO), str(REPO / "tests" / "fixtures")]
    import comfy.options
    comfy.options.enable_args_parsing()
    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    asyncio.run(nodes.load_custom_node(str(REPO), module_parent="custom_nodes"))
    return next(m for name, m in sys.modules.items() if name.endswith(".nodes.diffusion_model"))


def write_full(folder: Path) -> dict[str, Path]:
    """Full-size configs with random weights, in the converter's file format."""
    import torch
    from models.diffusion import DIFFUSIONRIG_256, FFHQ256_AUTOENC, DiffAEAutoencoder, DiffusionRig, files
    from models.diffusion.file_config import config_fields
    from models.loading import write_safetensors_atomic

    out = {}
    for name, kind, config, build in (("diffae", files.DIFFAE_KIND, FFHQ256_AUTOENC, DiffAEAutoencoder),
                                      ("rig", files.DIFFUSIONRIG_KIND, DIFFUSIONRIG_256, DiffusionRig)):
        torch.manual_seed(0)
        meta = {"kind": kind, "config": config.name, "config_fields": config_fields(config)}
        out[name] = write_safetensors_atomic(folder / f"{name}.safetensors", build(config).state_dict(), meta)
    return out


class Clock:
    """Wall and process-CPU seconds of one measured call; `sync` waits for the device first."""

    def __init__(self, sync: Callable[[], None]):
        self.sync = sync

    def __call__(self, fn: Callable[[], object]) -> tuple[float, float]:
        self.sync()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        self.sync()
        return time.perf_counter() - wall, time.process_time() - cpu


def bench(glue, path: Path, steps: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per-step seconds {mode: {"wall": [...], "cpu": [...]}} over the repetitions."""
    import torch
    import comfy.model_management
    import comfy.samplers

    model, encoder = glue.load_backbone(str(path))
    comfy.model_management.load_models_gpu([model])
    base = model.model
    backbone = base.diffusion_model.backbone
    param = next(backbone.parameters())
    device, dtype = param.device, param.dtype
    config = backbone.config
    size, width = config.image_size, encoder.code_dim
    rig = encoder.kind == "diffusionrig"
    generator = torch.Generator().manual_seed(0)
    code = torch.randn(1, width, generator=generator)
    x = torch.randn(1, 3, size, size, generator=generator)
    physic = torch.rand(1, config.physic_channels, size, size, generator=generator) if rig else None
    extra = {glue.PHYSIC_KEY: physic} if rig else {}
    cond = [[code[:, None, :], {glue.CODE_KEY: encoder.kind, **extra}]]
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(cond, cond)
    guider.set_cfg(1.0)
    model_sampling = model.get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(model_sampling, "ddim_uniform", steps)
    timesteps = [model_sampling.timestep(s).float().reshape(1).to(device) for s in sigmas[:-1]]

    x_dev, code_dev = x.to(device, dtype), code.to(device, dtype)
    physic_dev = physic.to(device, dtype) if rig else None
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    clock = Clock(sync)

    def direct():
        with torch.no_grad():
            for t in timesteps:
                backbone(x_dev, t, physic_dev, code_dev) if rig else backbone(x_dev, t, code_dev)
                sync()

    def through_model():
        with torch.no_grad():
            for sigma in sigmas[:-1]:
                base.apply_model(x_dev, sigma.reshape(1).to(device), c_concat=physic_dev, code=code_dev)
                sync()

    marks: list[tuple[float, float]] = []

    def on_step(*_):
        sync()
        marks.append((time.perf_counter(), time.process_time()))

    def sampler():
        marks.clear()
        guider.sample(torch.zeros_like(x), x, comfy.samplers.sampler_object("euler"), sigmas, callback=on_step,
                      disable_pbar=True, seed=0)

    runs = {"direct": direct, "model": through_model, "sampler": sampler}
    for fn in runs.values():  # warm-up: allocator, lazy init, the sampler's first model load
        fn()
    out = {mode: {"wall": [], "cpu": []} for mode in MODES}
    order = list(runs)
    for rep in range(repeats):
        for name in order[rep % len(order):] + order[:rep % len(order)]:
            wall, cpu = clock(runs[name])
            if name != "sampler":
                out[name]["wall"].append(wall / steps)
                out[name]["cpu"].append(cpu / steps)
                continue
            out["sampler call"]["wall"].append(wall / steps)
            out["sampler call"]["cpu"].append(cpu / steps)
            (w0, c0), (w1, c1) = marks[0], marks[-1]
            out["sampler step"]["wall"].append((w1 - w0) / (len(marks) - 1))
            out["sampler step"]["cpu"].append((c1 - c0) / (len(marks) - 1))
    return out


def report(name: str, steps: int, result: dict[str, dict[str, list[float]]]) -> None:
    import torch

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu = ""
    if torch.cuda.is_available():
        gpu = f", peak GPU memory allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        torch.cuda.reset_peak_memory_stats()
    print(f"{name}: {steps} steps x {len(result['direct']['wall'])} repetitions, peak RSS {peak:.0f} MiB{gpu}")
    for clock in ("wall", "cpu"):
        floor = {f: getattr(statistics, f)(result["direct"][clock]) if f == "median" else min(result["direct"][clock])
                 for f in ("median", "min")}
        for mode in MODES:
            values = result[mode][clock]
            med, low = statistics.median(values), min(values)
            print(f"  {clock:4s} {mode:12s} median {med * 1e3:9.2f} ms/step  min {low * 1e3:9.2f} ms/step  "
                  f"ratio median {med / floor['median']:.3f}  min {low / floor['min']:.3f}  "
                  f"over direct (median) {(med - floor['median']) * 1e3:+7.2f} ms/step")
    call = statistics.median(result["sampler call"]["wall"])
    print(f"  a 20-step edit in ComfyUI's sampler: {20 * call:.2f} s (median wall time per step x 20)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["tiny", "full", "both"], default="both")
    parser.add_argument("--steps", type=int, default=0, help="steps per run (default: 20 tiny, 3 full)")
    parser.add_argument("--repeats", type=int, default=0, help="repetitions (default: 15 tiny, 5 full)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when CUDA is available")
    args = parser.parse_args()
    glue = boot_comfy(args.cpu)
    import torch
    import comfy.model_management
    torch.set_num_threads(args.threads)
    device = comfy.model_management.get_torch_device()
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        if args.size in ("tiny", "both"):
            from diffusion_weights import TINY_DIFFAE_FILE, TINY_RIG_FILE, write_tiny_diffusion_models
            tiny = write_tiny_diffusion_models(Path(tmp) / "tiny")
            runs += [("tiny diffae (16 px)", tiny[TINY_DIFFAE_FILE], args.steps or 20, args.repeats or 15),
                     ("tiny rig (16 px)", tiny[TINY_RIG_FILE], args.steps or 20, args.repeats or 15)]
        if args.size in ("full", "both"):
            full = write_full(Path(tmp) / "full")
            runs += [("full diffae (256 px)", full["diffae"], args.steps or 3, args.repeats or 5),
                     ("full rig (256 px)", full["rig"], args.steps or 3, args.repeats or 5)]
        for name, path, steps, repeats in runs:
            report(name, steps, bench(glue, path, steps, repeats))
            comfy.model_management.unload_all_models()
            comfy.model_management.soft_empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
