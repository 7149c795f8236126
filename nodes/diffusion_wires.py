"""Wire types of the diffusion nodes (kept beside them; nodes/wires.py lists the rig's).

DIFFUSION_ENCODER  nodes.diffusion_model.DiffusionEncoder: the image encoder split off a loaded
                   Diff-AE (semantic encoder, 512-d z_sem) or DiffusionRig (ResNet-18, 64-d global
                   latent), in its own ModelPatcher.
ZSEM_DIRECTION     a (D,) float tensor: a unit attribute direction in Diff-AE's z_sem space.
"""
from comfy_api.latest import io

DiffusionEncoderWire = io.Custom("DIFFUSION_ENCODER")
ZSemDirection = io.Custom("ZSEM_DIRECTION")
