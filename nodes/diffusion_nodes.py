"""Node list of the diffusion backbones (Diff-AE, DiffusionRig) in ComfyUI's sampler pipeline."""
from comfy_api.latest import io

from .diffusion_batch import DiffusionConditioningBatch
from .diffusion_encode import DiffAEEncode, DiffusionRigCondition
from .diffusion_invert import DDIMInvert
from .diffusion_loader import DiffusionLoader
from .diffusion_zsem import LoadZSemDirection, SaveZSemDirection, ZSemBlend, ZSemDirectionFind, ZSemMove

DIFFUSION_NODES: list[type[io.ComfyNode]] = [
    DiffusionLoader,
    DiffAEEncode,
    DiffusionRigCondition,
    DDIMInvert,
    DiffusionConditioningBatch,
    ZSemBlend,
    ZSemDirectionFind,
    ZSemMove,
    SaveZSemDirection,
    LoadZSemDirection,
]
