"""Self-attention over the pixels of a feature map (ADM `AttentionBlock`, legacy QKV order).

Both Diff-AE (`use_new_attention_order=False`) and DiffusionRig use the *legacy* order: the 1x1
`qkv` conv's output channels are grouped per head first, and each head's group is split into q, k,
v. With the official single head this equals the newer order; for more heads it does not, so the
legacy split is implemented as such.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .norm import group_norm


class AttentionBlock(nn.Module):
    """x + proj_out(attention(qkv(norm(x)))); proj_out starts at zero so a new block is the identity."""

    def __init__(self, channels: int, num_heads: int = 1):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"{channels} channels do not split into {num_heads} heads")
        self.num_heads = num_heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        flat = x.reshape(b, c, height * width)
        qkv = self.qkv(self.norm(flat))                                   # (B, 3C, T)
        head = c // self.num_heads
        q, k, v = qkv.reshape(b * self.num_heads, 3 * head, -1).split(head, dim=1)   # legacy: per head, then q|k|v
        # softmax(q^T k / sqrt(head)) v, the scaling ADM applies as 1/sqrt(sqrt(head)) on q and on k
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        out = out.transpose(1, 2).reshape(b, c, -1)
        return (flat + self.proj_out(out)).reshape(b, c, height, width)
