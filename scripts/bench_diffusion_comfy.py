"""Per-step cost of the Diff-AE / DiffusionRig UNets inside ComfyUI's sampler vs the module called directly.

    .venv/bin/python scripts/bench_diffusion_comfy.py [--size tiny|full|both] [--steps N] [--threads N]

Runs ComfyUI in-process on the CPU (no server): the pack is loaded as a custom node, a converted
file (tiny test config, or full size with random weights) goes through the pack's loader, and a
CFGGuider (cfg 1, 'euler' = DDIM) samples N steps. The direct baseline calls the same backbone N
times. The ratio is sampler / direct per step (goal <= 1.05); peak RSS is the process maximum.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMFY = REPO / ".likeness" / "ComfyUI"


def boot_comfy():
    sys.argv = [sys.argv[0], "--cpu"]
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


def bench(glue, path: Path, steps: int) -> dict:
    import torch
    import comfy.samplers

    model, encoder = glue.load_backbone(str(path))
    backbone = model.model.diffusion_model.backbone
    config = backbone.config
    size, width = config.image_size, encoder.code_dim
    code = torch.randn(1, width)
    x = torch.randn(1, 3, size, size)
    extra = {}
    if encoder.kind == "diffusionrig":
        extra[glue.PHYSIC_KEY] = torch.rand(1, config.physic_channels, size, size)
    cond = [[code[:, None, :], {glue.CODE_KEY: encoder.kind, **extra}]]
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(cond, cond)
    guider.set_cfg(1.0)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "ddim_uniform", steps)

    def sampler_run():
        guider.sample(torch.zeros_like(x), x, comfy.samplers.sampler_object("euler"), sigmas, disable_pbar=True, seed=0)

    def direct_run():
        with torch.no_grad():
            for t in range(steps):
                if encoder.kind == "diffusionrig":
                    backbone(x, torch.tensor([float(t)]), extra[glue.PHYSIC_KEY], code)
                else:
                    backbone(x, torch.tensor([float(t)]), code)

    result = {}
    for label, fn in (("direct", direct_run), ("comfy", sampler_run)):
        fn()  # warm-up (and model load for the sampler)
        start = time.perf_counter()
        fn()
        result[label] = (time.perf_counter() - start) / steps
    result["ratio"] = result["comfy"] / result["direct"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["tiny", "full", "both"], default="both")
    parser.add_argument("--steps", type=int, default=0, help="steps (default: 20 tiny, 3 full)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    glue = boot_comfy()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        if args.size in ("tiny", "both"):
            from diffusion_weights import TINY_DIFFAE_FILE, TINY_RIG_FILE, write_tiny_diffusion_models
            tiny = write_tiny_diffusion_models(Path(tmp) / "tiny")
            runs += [("tiny diffae", tiny[TINY_DIFFAE_FILE], args.steps or 20),
                     ("tiny rig", tiny[TINY_RIG_FILE], args.steps or 20)]
        if args.size in ("full", "both"):
            full = write_full(Path(tmp) / "full")
            runs += [("full diffae", full["diffae"], args.steps or 3), ("full rig", full["rig"], args.steps or 3)]
        for name, path, steps in runs:
            r = bench(glue, path, steps)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{name:12s} steps {steps:3d}  direct {r['direct'] * 1e3:9.1f} ms/step  comfy "
                  f"{r['comfy'] * 1e3:9.1f} ms/step  ratio {r['ratio']:.3f}  peak RSS {peak:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
