"""Likeness: diffusion-based, identity-preserving face editing nodes for ComfyUI.

ComfyUI imports this file and calls `comfy_entrypoint` (V3 node API). The model code lives in
models/ (pure PyTorch, no ComfyUI imports); nodes/ is the thin ComfyUI glue.
"""
from .nodes import comfy_entrypoint

__all__ = ["comfy_entrypoint"]
