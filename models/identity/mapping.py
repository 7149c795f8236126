"""Face2Diffusion's mapping network: an MSID feature (+ expression) to two CLIP token embeddings.

The identifier S* is written as two words ("f l") in the prompt; this network produces the
768-d input embeddings that replace those two tokens. Each token has its own MLP (`i2t_first`,
`i2t_last`) reading the same input: the 1536-d identity feature concatenated with a 64-d
expression code. Training randomly swapped the real expression for the learned `null_exp`, and
inference passes `null_exp`, which leaves the expression to the prompt.

`expression_strength` blends between the two: `null_exp + s * (expression - null_exp)`. It is the
official training mask made continuous (s = 1 is the given expression, s = 0 is `null_exp`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MappingConfig:
    identity_dim: int = 1536
    hidden_dim: int = 1536
    token_dim: int = 768  # CLIP ViT-L/14 text width (Stable Diffusion 1.x)
    expression_dim: int = 64
    n_layers: int = 2
    dropout: float = 0.1
    negative_slope: float = 0.2


F2D_MAPPING = MappingConfig()


class TokenMLP(nn.Module):
    """n x [Linear, Dropout, LeakyReLU] then a Linear to the token width (`IMG2TEXT_MLP`)."""

    def __init__(self, in_dim: int, config: MappingConfig):
        super().__init__()
        # fc_out is registered first: the official module does, and the file lists keys in that order
        self.fc_out = nn.Linear(config.hidden_dim, config.token_dim)
        dims = [in_dim] + [config.hidden_dim] * config.n_layers
        self.layers = nn.Sequential(*(
            nn.Sequential(nn.Linear(a, b), nn.Dropout(config.dropout), nn.LeakyReLU(config.negative_slope))
            for a, b in zip(dims[:-1], dims[1:])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.layers(x))


class Img2TextMapping(nn.Module):
    """`IMG2TEXTwithEXP(1536, 1536, 768)`: identity (B, 1536) [+ expression (B, 64)] -> two (B, 768) tokens."""

    def __init__(self, config: MappingConfig = F2D_MAPPING):
        super().__init__()
        self.config = config
        self.null_exp = nn.Parameter(torch.zeros(config.expression_dim))
        in_dim = config.identity_dim + config.expression_dim
        self.i2t_first = TokenMLP(in_dim, config)
        self.i2t_last = TokenMLP(in_dim, config)

    def expression_input(self, batch: int, expression: torch.Tensor | None,
                         strength: float | torch.Tensor) -> torch.Tensor:
        """The (B, 64) expression slot: `null_exp` moved towards `expression` by `strength` (scalar or (B,))."""
        null = self.null_exp.expand(batch, -1)
        if expression is None:
            return null
        expression = expression.to(null.device, null.dtype)
        if expression.shape[-1] != self.config.expression_dim:
            raise ValueError(f"expression must have {self.config.expression_dim} values, "
                             f"got shape {tuple(expression.shape)}")
        strength = torch.as_tensor(strength, device=null.device, dtype=null.dtype).reshape(-1, 1)
        return torch.lerp(null, expression.expand(batch, -1), strength)

    def forward(self, identity: torch.Tensor, expression: torch.Tensor | None = None,
                expression_strength: float | torch.Tensor = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (first, last): the embeddings for the identifier's two tokens, each (B, 768)."""
        if identity.ndim != 2 or identity.shape[1] != self.config.identity_dim:
            raise ValueError(f"identity must be (B, {self.config.identity_dim}), got {tuple(identity.shape)}")
        identity = identity.to(self.null_exp.device, self.null_exp.dtype)
        x = torch.cat([identity, self.expression_input(len(identity), expression, expression_strength)], dim=-1)
        return self.i2t_first(x), self.i2t_last(x)


def mapping_state_shapes(config: MappingConfig = F2D_MAPPING) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of the mapping network with its shape (built on the meta device)."""
    with torch.device("meta"):
        state = Img2TextMapping(config).state_dict()
    return {key: tuple(value.shape) for key, value in state.items()}
