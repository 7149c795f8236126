"""Node list of the identity nodes (Face2Diffusion's MSID encoder and text injection, identity similarity)."""
from comfy_api.latest import io

from .identity_condition import Face2DiffusionCondition
from .identity_expression import ExpressionGuidance
from .identity_msid import MSIDEncoder
from .identity_similarity import IdentitySimilarity

IDENTITY_NODES: list[type[io.ComfyNode]] = [MSIDEncoder, ExpressionGuidance, Face2DiffusionCondition,
                                            IdentitySimilarity]
