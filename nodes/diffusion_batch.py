"""LikenessDiffusionConditioningBatch: several Diff-AE / DiffusionRig conditions as one sampler batch."""
from __future__ import annotations

from comfy_api.latest import io

from .diffusion_conditioning import stack_conditionings

SLOTS = 5


class DiffusionConditioningBatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        optional = [io.Conditioning.Input(f"conditioning_{i}", optional=True,
                                          tooltip=f"Item(s) {i} of the batch (optional).")
                    for i in range(2, SLOTS + 1)]
        return io.Schema(
            node_id="LikenessDiffusionConditioningBatch",
            display_name="Diffusion Conditioning Batch",
            category="Likeness/Diffusion",
            description="Stacks Diff-AE or DiffusionRig conditionings (DiffAEEncode, z_sem tools, "
                        "DiffusionRigCondition) into one batch, item i sampling with conditioning i, so one "
                        "sampler run makes a whole set of edits. Give the sampler a latent batch of the same "
                        "size: RepeatLatentBatch of one x_T from an inversion, or empty latents through "
                        "LatentBatchSeedBehavior 'fixed' so every item starts from the same noise. Chain "
                        "nodes for more than five. The negative is the same batch with zero codes.",
            inputs=[io.Conditioning.Input("conditioning_1", tooltip="First item(s) of the batch."), *optional],
            outputs=[io.Conditioning.Output(display_name="positive", tooltip="The conditions, one per item."),
                     io.Conditioning.Output(display_name="negative",
                                            tooltip="Same buffers, zero codes (for a cfg of 1, unused).")],
        )

    @classmethod
    def execute(cls, conditioning_1, **more) -> io.NodeOutput:
        given = [conditioning_1] + [more[f"conditioning_{i}"] for i in range(2, SLOTS + 1)
                                    if more.get(f"conditioning_{i}") is not None]
        positive, negative = stack_conditionings(given)
        return io.NodeOutput(positive, negative)
