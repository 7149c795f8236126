"""ComfyUI glue of the Likeness pack: V3 node classes and their registration."""
from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from .diffusion_nodes import DIFFUSION_NODES
from .face_crop import FaceAlignCrop
from .face_detect import FaceDetect
from .face_fit import FaceFit
from .face_paste import FacePasteBack
from .identity_nodes import IDENTITY_NODES
from .model_files import register_model_folders
from .render_buffers import RenderBuffersNode
from .rig_animate import RigAnimate
from .rig_edit import RigEdit
from .rig_files import LoadFaceRig, SaveFaceRig
from .rig_lighting import RigLighting
from .rig_overlay import RigOverlay
from .rig_preview_edit import RigPreviewEdit
from .rig_transfer import RigTransfer

NODE_LIST: list[type[io.ComfyNode]] = [
    FaceDetect,
    FaceAlignCrop,
    FacePasteBack,
    FaceFit,
    RigEdit,
    RigLighting,
    RigTransfer,
    RigAnimate,
    RenderBuffersNode,
    RigPreviewEdit,
    RigOverlay,
    SaveFaceRig,
    LoadFaceRig,
    *DIFFUSION_NODES,
    *IDENTITY_NODES,
]


class LikenessExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_LIST)


async def comfy_entrypoint() -> LikenessExtension:
    register_model_folders()
    return LikenessExtension()
