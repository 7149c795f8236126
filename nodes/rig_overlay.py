"""LikenessRigOverlay: the fitted mesh drawn on the original photo."""
from comfy_api.latest import io

from ..models.rig.overlay import MODES
from .flame_assets import assets_for
from .wires import FaceRig


class RigOverlay(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessRigOverlay",
            display_name="Rig Overlay on Photo",
            category="Likeness/Rig",
            description="Draws each fitted (or edited) face's mesh as a wireframe and/or its landmarks on the original "
                        "photo or frames, using the crop records the rig carries, to check a fit in context.",
            inputs=[
                io.Image.Input("image", tooltip="The original photo or frames the rig's crops were cut from."),
                FaceRig.Input("face_rig", tooltip="The rig to draw."),
                io.Combo.Input("mode", options=list(MODES), default="wireframe",
                               tooltip="Draw the mesh edges, the vertices, or both."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The photo with the meshes drawn on.")],
        )

    @classmethod
    def execute(cls, image, face_rig, mode: str) -> io.NodeOutput:
        from ..models.rig.geometry import rig_mesh
        from ..models.rig.overlay import overlay_on_photo

        try:
            drawn = overlay_on_photo(image, face_rig, rig_mesh(face_rig, flame=assets_for(face_rig)), mode)
        except ValueError as err:
            raise ValueError(f"Likeness Rig Overlay: {err}") from None
        return io.NodeOutput(drawn)
