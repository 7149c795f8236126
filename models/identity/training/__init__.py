"""Training Face2Diffusion's mapping network and the rig-to-expression map (pure PyTorch pieces).

* `cgdr`: the class-guided denoising regularisation loss and the latent-resolution face mask;
* `text_injection`: the identifier's two vectors put into a transformers CLIPTextModel by a hook;
* `null_expression`: the official random swap of the expression code for `null_exp`;
* `trainable`: mapping network + rig map as one module; `step`: one batch's loss;
* `prepare`, `face_mask`, `dataset`, `sampler`: photos -> dataset folder -> sharded batches;
* `export`: the trained weights in the files the nodes load.

`scripts/train_face2diffusion.py` wires them to accelerate and diffusers; nothing here imports
either (or ComfyUI).
"""
from .cgdr import CGDRConfig, CGDRTerms, cgdr_loss, latent_mask
from .dataset import DatasetIndex, FaceTrainingDataset, write_sample
from .export import save_mapping, save_rig_map
from .null_expression import swap_null_expression
from .prompts import PromptConfig, sample_prompts
from .sampler import EpochShardSampler, batches_per_epoch, shard_order
from .step import FrozenParts, training_loss
from .text_injection import identifier_slots, inject_identifier, text_embeddings
from .trainable import Face2DiffusionTrainable, TrainableConfig

__all__ = [
    "CGDRConfig", "CGDRTerms", "DatasetIndex", "EpochShardSampler", "Face2DiffusionTrainable", "FaceTrainingDataset",
    "FrozenParts", "PromptConfig", "TrainableConfig", "batches_per_epoch", "cgdr_loss", "identifier_slots",
    "inject_identifier", "latent_mask", "sample_prompts", "save_mapping", "save_rig_map", "shard_order",
    "swap_null_expression", "text_embeddings", "training_loss", "write_sample",
]
