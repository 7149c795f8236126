"""LikenessRenderBuffers: DiffusionRig's physical buffers from a FACE_RIG, plus previews."""
import torch
from comfy_api.latest import io

from ..models.render.buffers import PHYSIC_ORDERS
from ..models.render.preview import buffers_to_images, wireframe_overlay
from .flame_assets import assets_for
from .wires import FaceRig, RenderBuffers


class RenderBuffersNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessRenderBuffers",
            display_name="RenderBuffers",
            category="Likeness/Rig",
            description="Renders the rig into the physical buffers DiffusionRig is conditioned on, pixel-aligned "
                        "with the aligned crop: world-space normals, albedo, spherical-harmonics shading, rendered "
                        "= albedo x shading (unclamped), depth and coverage. RENDER_BUFFERS carries them as a "
                        "9-channel condition in the chosen order; the IMAGE outputs are previews.",
            inputs=[
                FaceRig.Input("face_rig", tooltip="The (edited) face rig to render."),
                io.Combo.Input("channel_order", options=list(PHYSIC_ORDERS), default="diffusionrig",
                               tooltip="Order of the 9 condition channels: DiffusionRig's (rendered, normal, "
                                       "albedo) or CapHuman's (normal, albedo, rendered)."),
                io.Image.Input("crops", optional=True,
                               tooltip="Optional aligned crops to draw the mesh wireframe over."),
            ],
            outputs=[
                RenderBuffers.Output(display_name="buffers", tooltip="The 9-channel physical buffers and the rest."),
                io.Image.Output(display_name="rendered", tooltip="albedo x shading, clamped to [0, 1] for display."),
                io.Image.Output(display_name="normal", tooltip="World-space normals shown as (n + 1) / 2."),
                io.Image.Output(display_name="albedo", tooltip="Per-vertex skin colour without lighting."),
                io.Image.Output(display_name="shading", tooltip="The SH lighting on the face's normals."),
                io.Image.Output(display_name="depth", tooltip="Depth inside the face, near = bright."),
                io.Mask.Output(display_name="mask", tooltip="Where the face mesh covers the crop."),
                io.Image.Output(display_name="overlay", tooltip="The wireframe over the crops (or over the "
                                                                "rendered face when no crops are wired)."),
            ],
        )

    @classmethod
    def execute(cls, face_rig, channel_order: str, crops=None) -> io.NodeOutput:
        from ..models.rig.render import render_rig

        out = render_rig(face_rig, channel_order, flame=assets_for(face_rig))
        previews = buffers_to_images(out.buffers)
        base = previews["rendered"] if crops is None else crops[..., :3]
        if base.shape[1:3] != previews["rendered"].shape[1:3]:
            raise ValueError(f"Likeness RenderBuffers: crops are {tuple(base.shape[1:3])} px but the rig was fitted "
                             f"at {face_rig.crop_size} px")
        overlay = wireframe_overlay(base, out.mesh.screen, out.mesh.faces, colour=(0.2, 1.0, 0.4), alpha=0.6)
        mask = out.buffers.mask.to(torch.float32)
        return io.NodeOutput(out, previews["rendered"], previews["normal"], previews["albedo"], previews["shading"],
                             previews["depth"], mask, overlay)
