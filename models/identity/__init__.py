"""Identity: Face2Diffusion's identity encoder and mapping network, and identity similarity scorers.

* `MSIDEncoder` (a timm ViT) turns a 112 x 112 ArcFace crop into a 1536-d multi-scale identity
  feature; `Img2TextMapping` turns that (+ an optional expression code) into the two CLIP token
  embeddings Face2Diffusion injects for its identifier. The official checkpoints are converted
  once by `scripts/convert_face2diffusion.py`; `load_msid_encoder` / `load_mapping` read the result.
* `DlibFaceEmbedder` (dlib's 128-d model, shipped by `face-recognition-models`) and
  `ArcFaceOnnxEmbedder` (users' InsightFace ONNX files) measure whether an edit kept the person;
  dlib and onnxruntime are optional and imported on first use.
* `Deep3DRecon` (Deep3DFaceRecon's ResNet-50 regressor) turns a face into 257 BFM coefficients,
  whose 64 expression coefficients can fill Face2Diffusion's expression slot; the released
  `epoch_20.pth` is converted by `scripts/convert_deep3d.py`, `load_deep3d_recon` reads the result.
"""
from .alignment import arcface_crops
from .arcface_onnx import ArcFaceOnnxConfig, ArcFaceOnnxEmbedder
from .deep3d import DEEP3D, Deep3DConfig, Deep3DRecon, deep3d_state_shapes
from .deep3d_align import deep3d_crop_affine, deep3d_crops
from .deep3d_files import DEEP3D_FILE, DEEP3D_KIND, load_deep3d_recon, read_deep3d_checkpoint
from .dlib_embedder import DlibEmbedderConfig, DlibFaceEmbedder, DlibModelFiles, find_dlib_model_files, start_box
from .files import MAPPING_FILE, MAPPING_KIND, MSID_FILE, MSID_KIND, load_mapping, load_msid_encoder
from .mapping import F2D_MAPPING, Img2TextMapping, MappingConfig, mapping_state_shapes
from .msid import F2D_MSID, MSIDConfig, MSIDEncoder, msid_state_shapes
from .official import read_f2d_mapping, read_f2d_msid
from .optional import MissingDependencyError
from .similarity import DLIB_SAME_PERSON_DISTANCE, cosine_similarity, l2_distance

__all__ = [
    "ArcFaceOnnxConfig", "ArcFaceOnnxEmbedder", "DEEP3D", "DEEP3D_FILE", "DEEP3D_KIND", "DLIB_SAME_PERSON_DISTANCE",
    "Deep3DConfig", "Deep3DRecon", "deep3d_crop_affine", "deep3d_crops", "deep3d_state_shapes", "load_deep3d_recon",
    "read_deep3d_checkpoint", "DlibEmbedderConfig", "DlibFaceEmbedder",
    "DlibModelFiles", "F2D_MAPPING", "F2D_MSID", "Img2TextMapping", "MAPPING_FILE", "MAPPING_KIND", "MSIDConfig",
    "MSIDEncoder", "MSID_FILE", "MSID_KIND", "MappingConfig", "MissingDependencyError", "arcface_crops",
    "cosine_similarity", "find_dlib_model_files", "l2_distance", "load_mapping", "load_msid_encoder",
    "mapping_state_shapes", "msid_state_shapes", "read_f2d_mapping", "read_f2d_msid", "start_box",
]
