"""z_sem tools: blend two codes, find an attribute direction, save / load it, move along it."""
from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from ..models.diffusion import zsem
from .diffusion_conditioning import codes_of, replace_codes
from .diffusion_loader import DIRECTIONS, FOLDER
from .diffusion_wires import ZSemDirection

OUTPUT_SUBFOLDER = "likeness_zsem_directions"
OUTPUT_PREFIX = "output/"


def _output_dir() -> str:
    return os.path.join(folder_paths.get_output_directory(), OUTPUT_SUBFOLDER)


def direction_files() -> list[str]:
    """directions/* of likeness/diffusion, then saved ones from the output folder as output/<name>."""
    shipped = [f for f in folder_paths.get_filename_list(FOLDER) if f.replace("\\", "/").startswith(DIRECTIONS)]
    out = _output_dir()
    saved = sorted(f for f in os.listdir(out) if f.endswith(".safetensors")) if os.path.isdir(out) else []
    return shipped + [OUTPUT_PREFIX + f for f in saved]


class ZSemBlend(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessZSemBlend",
            display_name="z_sem Blend",
            category="Likeness/Diffusion",
            description="Mixes the Diff-AE codes of two encodings (e.g. two people): slerp keeps the code's "
                        "length, lerp is the straight average. Pair the result with either x_T.",
            inputs=[io.Conditioning.Input("a", tooltip="DiffAEEncode positive (weight 0)."),
                    io.Conditioning.Input("b", tooltip="DiffAEEncode positive (weight 1); one code or as many as a."),
                    io.Float.Input("weight", default=0.5, min=-1.0, max=2.0, step=0.01,
                                   tooltip="0 = a, 1 = b; outside [0, 1] extrapolates."),
                    io.Combo.Input("method", options=["slerp", "lerp"], default="slerp",
                                   tooltip="Spherical (length-preserving) or linear interpolation.")],
            outputs=[io.Conditioning.Output(display_name="conditioning", tooltip="a's conditioning, blended code.")],
        )

    @classmethod
    def execute(cls, a, b, weight: float, method: str) -> io.NodeOutput:
        za, _ = codes_of(a, "a")
        zb, _ = codes_of(b, "b")
        return io.NodeOutput(replace_codes(a, zsem.blend(za, zb.to(za), weight, method)))


class ZSemDirectionFind(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessZSemDirection",
            display_name="z_sem Attribute Direction",
            category="Likeness/Diffusion",
            description="The unit direction from the mean code of photos without an attribute to the mean code "
                        "of photos with it (encode each set as one image batch).",
            inputs=[io.Conditioning.Input("with_attribute", tooltip="DiffAEEncode of photos showing the attribute."),
                    io.Conditioning.Input("without_attribute", tooltip="DiffAEEncode of photos without it.")],
            outputs=[ZSemDirection.Output(display_name="direction", tooltip="Unit vector in z_sem space.")],
        )

    @classmethod
    def execute(cls, with_attribute, without_attribute) -> io.NodeOutput:
        pos, _ = codes_of(with_attribute, "with_attribute")
        neg, _ = codes_of(without_attribute, "without_attribute")
        return io.NodeOutput(zsem.attribute_direction(pos.float(), neg.float()))


class ZSemMove(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessZSemMove",
            display_name="z_sem Move Along Direction",
            category="Likeness/Diffusion",
            description="Adds strength x direction to every code of a Diff-AE conditioning (attribute editing); "
                        "sample with the photo's x_T to keep everything else.",
            inputs=[io.Conditioning.Input("conditioning", tooltip="DiffAEEncode positive."),
                    ZSemDirection.Input("direction", tooltip="From z_sem Attribute Direction or Load."),
                    io.Float.Input("strength", default=0.3, min=-10.0, max=10.0, step=0.01,
                                   tooltip="How far to move, in units of the direction (negative removes the "
                                           "attribute).")],
            outputs=[io.Conditioning.Output(display_name="conditioning", tooltip="The moved codes.")],
        )

    @classmethod
    def execute(cls, conditioning, direction, strength: float) -> io.NodeOutput:
        z, _ = codes_of(conditioning, "conditioning")
        return io.NodeOutput(replace_codes(conditioning, zsem.move(z, direction, strength)))


class SaveZSemDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessSaveZSemDirection",
            display_name="Save z_sem Direction",
            category="Likeness/Diffusion",
            description=f"Writes a direction to output/{OUTPUT_SUBFOLDER}/ as a small safetensors file, which "
                        "Load z_sem Direction lists.",
            inputs=[ZSemDirection.Input("direction", tooltip="The direction to keep."),
                    io.String.Input("filename_prefix", default="direction",
                                    tooltip="File name prefix; a counter is appended.")],
            outputs=[io.String.Output(display_name="file", tooltip="The name to pick in Load z_sem Direction.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, direction, filename_prefix: str) -> io.NodeOutput:
        out = _output_dir()
        folder, name, counter, _, _ = folder_paths.get_save_image_path(filename_prefix, out)
        path = zsem.save_direction(os.path.join(folder, f"{name}_{counter:05}.safetensors"), direction)
        label = OUTPUT_PREFIX + os.path.relpath(path, out).replace("\\", "/")
        return io.NodeOutput(label, ui={"text": [label]})


class LoadZSemDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessLoadZSemDirection",
            display_name="Load z_sem Direction",
            category="Likeness/Diffusion",
            description="Loads a direction from models/likeness/diffusion/directions/ or one saved to the output "
                        "folder by Save z_sem Direction.",
            inputs=[io.Combo.Input("direction_file", options=direction_files(),
                                   tooltip="directions/<name> (models folder) or output/<name> (saved).")],
            outputs=[ZSemDirection.Output(display_name="direction", tooltip="Unit vector in z_sem space.")],
        )

    @classmethod
    def execute(cls, direction_file: str) -> io.NodeOutput:
        if direction_file.startswith(OUTPUT_PREFIX):
            path = os.path.join(_output_dir(), direction_file[len(OUTPUT_PREFIX):])
        else:
            path = folder_paths.get_full_path(FOLDER, direction_file)
        if path is None or not os.path.isfile(path):
            raise FileNotFoundError(f"Likeness: z_sem direction {direction_file} not found")
        return io.NodeOutput(zsem.load_direction(path))
