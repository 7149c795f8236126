"""Node list of the identity nodes (Face2Diffusion's MSID encoder and text injection, identity similarity)."""
from comfy_api.latest import io

IDENTITY_NODES: list[type[io.ComfyNode]] = []
