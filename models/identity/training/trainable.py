"""What the optimiser updates: the mapping network and, optionally, the rig-to-expression map.

One module, so that a single DistributedDataParallel wrapper synchronises both. Its forward turns
MSID features (and rig expression features) into the identifier's two token vectors. The
expression slot is the rig map's output, swapped for `null_exp` at random while training; without
a rig map it is `null_exp`. With the mapping frozen (learning a rig map against the official
mapping) the mapping stays in eval mode, so its dropout does not blur the target the map learns.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..mapping import Img2TextMapping
from ..rig_expression import RigExpressionMap
from .null_expression import swap_null_expression


@dataclass(frozen=True)
class TrainableConfig:
    freeze_mapping: bool = False
    null_expression_probability: float = 0.5  # the official rate is unpublished


class Face2DiffusionTrainable(nn.Module):
    def __init__(self, mapping: Img2TextMapping, rig_map: RigExpressionMap | None = None,
                 config: TrainableConfig = TrainableConfig()):
        super().__init__()
        if config.freeze_mapping and rig_map is None:
            raise ValueError("with the mapping network frozen there is nothing to train: add a rig expression map")
        if rig_map is not None and rig_map.linear.out_features != mapping.config.expression_dim:
            raise ValueError(f"the rig map outputs {rig_map.linear.out_features} values, the mapping network "
                             f"reads {mapping.config.expression_dim}")
        self.config = config
        self.mapping = mapping
        self.rig_map = rig_map
        self.mapping.requires_grad_(not config.freeze_mapping)

    def train(self, mode: bool = True) -> "Face2DiffusionTrainable":
        super().train(mode)
        if self.config.freeze_mapping:
            self.mapping.eval()
        return self

    def expression(self, batch: int, rig_features: torch.Tensor | None) -> torch.Tensor:
        """The (B, E) expression slot for this batch."""
        null = self.mapping.null_exp.expand(batch, -1)
        if self.rig_map is None:
            return null
        if rig_features is None:
            raise ValueError("this trainer has a rig expression map but the batch has no rig features")
        code = self.rig_map(rig_features)
        if self.training and self.config.null_expression_probability > 0:
            code, _ = swap_null_expression(code, self.mapping.null_exp, self.config.null_expression_probability)
        return code

    def forward(self, identity: torch.Tensor, rig_features: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mapping(identity, self.expression(len(identity), rig_features), expression_strength=1.0)
