"""LikenessFaceFit: fit the 3D face rig to aligned face crops."""
from comfy_api.latest import io

from ..models.render.preview import wireframe_overlay
from .flame_assets import flame_assets
from .runtime import check_interrupt
from .wires import FaceCrop, FaceRig

BACKENDS = ("embedded mesh (468 points)", "FLAME 2020 (DECA)")


class FaceFit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessFaceFit",
            display_name="FaceFit",
            category="Likeness/Rig",
            description="Fits a 3D face rig to each aligned crop: head pose and camera, the person's face shape, "
                        "the expression (as action units), skin colour per vertex and the photo's lighting as "
                        "spherical harmonics. The embedded backend uses the 468-point face mesh of the built-in "
                        "landmarker and needs no download. The rig drives Rig Edit, Render Buffers and the "
                        "preview edit.",
            inputs=[
                io.Image.Input("crops", tooltip="Aligned face crops from Face Align Crop."),
                FaceCrop.Input("face_crop", tooltip="The FACE_CROP output of the same Face Align Crop; it carries "
                                                    "the landmarks the fit starts from."),
                io.Combo.Input("backend", options=list(BACKENDS), default=BACKENDS[0],
                               tooltip="Face model to fit. The embedded mesh works with no downloads. FLAME (what "
                                       "DiffusionRig uses) needs FLAME 2020 and DECA, downloaded after registering "
                                       "and converted with scripts/convert_flame_deca.py into models/likeness/flame."),
                io.Float.Input("max_yaw", default=45.0, min=10.0, max=90.0, step=1.0,
                               tooltip="Embedded mesh: faces turned further than this from frontal (degrees) stop "
                                       "with a message, as the landmark model guesses the hidden half of "
                                       "near-profile faces."),
                io.Int.Input("refine_steps", default=60, min=0, max=500,
                             tooltip="FLAME: optimiser steps refining DECA's estimate of pose, jaw, expression, "
                                     "shape and camera on the dense landmarks (0 = DECA's regression as is)."),
            ],
            outputs=[
                FaceRig.Output(display_name="face_rig", tooltip="The fitted rig, one face per crop."),
                io.Image.Output(display_name="overlay", tooltip="The crops with the fitted mesh drawn on, to "
                                                                "check the fit."),
            ],
        )

    @classmethod
    def execute(cls, crops, face_crop, backend: str, max_yaw: float, refine_steps: int) -> io.NodeOutput:
        from ..models.rig.fit_mesh import FitError, MeshFitSettings, fit_mesh468
        from ..models.rig.geometry import rig_mesh

        flame = None
        try:
            if backend == BACKENDS[1]:
                from ..models.rig.flame_backend import fit_flame

                flame = flame_assets()
                rig = fit_flame(crops, face_crop, flame, refine_steps=refine_steps, check_interrupt=check_interrupt)
            else:
                rig = fit_mesh468(crops, face_crop, MeshFitSettings(max_yaw_degrees=max_yaw),
                                  check_interrupt=check_interrupt)
        except (FitError, FileNotFoundError) as err:
            raise ValueError(f"Likeness FaceFit: {err}") from None
        if len(rig) == 0:
            return io.NodeOutput(rig, crops.clone())
        mesh = rig_mesh(rig, flame=flame)
        overlay = wireframe_overlay(crops[..., :3], mesh.screen, mesh.faces, colour=(0.2, 1.0, 0.4), alpha=0.6)
        return io.NodeOutput(rig, overlay)
