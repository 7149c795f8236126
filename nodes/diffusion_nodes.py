"""Node list of the diffusion backbones (Diff-AE, DiffusionRig) in ComfyUI's sampler pipeline."""
from comfy_api.latest import io

DIFFUSION_NODES: list[type[io.ComfyNode]] = []
