"""ComfyUI glue of the Likeness pack: V3 node classes and their registration."""
from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from .face_crop import FaceAlignCrop
from .face_detect import FaceDetect
from .face_paste import FacePasteBack
from .model_files import register_model_folders

NODE_LIST: list[type[io.ComfyNode]] = [
    FaceDetect,
    FaceAlignCrop,
    FacePasteBack,
]


class LikenessExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_LIST)


async def comfy_entrypoint() -> LikenessExtension:
    register_model_folders()
    return LikenessExtension()
