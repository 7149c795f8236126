"""LikenessSaveFaceRig / LikenessLoadFaceRig: keep a fitted (or edited) rig as a small file and reuse it."""
import os

import folder_paths
from comfy_api.latest import io

from .model_files import folder_dirs, rig_output_dir
from .wires import FaceRig


class SaveFaceRig(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessSaveFaceRig",
            display_name="Save Face Rig",
            category="Likeness/Rig",
            description="Saves a FACE_RIG as a small .safetensors file (parameters plus the crop records) in "
                        "ComfyUI's output folder under likeness_rigs/, where Load Face Rig finds it.",
            inputs=[
                FaceRig.Input("face_rig", tooltip="The rig to save."),
                io.String.Input("filename_prefix", default="face_rig",
                                tooltip="File name prefix; a counter is appended so nothing is overwritten."),
            ],
            outputs=[io.String.Output(display_name="path", tooltip="The file written.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, face_rig, filename_prefix: str) -> io.NodeOutput:
        from ..models.rig.io import save_rig

        folder = rig_output_dir()
        os.makedirs(folder, exist_ok=True)
        stem = os.path.basename(filename_prefix.strip()) or "face_rig"
        taken = set(os.listdir(folder))
        counter = 1
        while f"{stem}_{counter:05d}.safetensors" in taken:
            counter += 1
        path = save_rig(face_rig, os.path.join(folder, f"{stem}_{counter:05d}.safetensors"))
        return io.NodeOutput(str(path), ui={"text": [str(path)]})


class LoadFaceRig(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessLoadFaceRig",
            display_name="Load Face Rig",
            category="Likeness/Rig",
            description="Loads a rig saved by Save Face Rig (from output/likeness_rigs/ or models/likeness/rigs/).",
            inputs=[
                io.Combo.Input("rig_file", options=folder_paths.get_filename_list("likeness_rigs"),
                               tooltip="A saved .safetensors face rig."),
            ],
            outputs=[FaceRig.Output(display_name="face_rig", tooltip="The loaded rig.")],
        )

    @classmethod
    def execute(cls, rig_file: str) -> io.NodeOutput:
        from ..models.rig.io import load_rig

        path = folder_paths.get_full_path("likeness_rigs", rig_file)
        if path is None:
            searched = ", ".join(str(d) for d in folder_dirs("likeness_rigs"))
            raise ValueError(f"Likeness Load Face Rig: {rig_file!r} is not in any of: {searched}")
        return io.NodeOutput(load_rig(path))
