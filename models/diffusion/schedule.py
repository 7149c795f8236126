"""The ADM noise schedule both models were trained with, and timestep respacing for sampling.

q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) with abar_t = prod_{s<=t} (1 - beta_s) and
betas linear from 1e-4 to 0.02 over T = 1000 steps (scaled by 1000/T for other T, as ADM does).
A sampler with fewer steps uses a subset of the T timesteps; on it, the model is still called
with the original indices and abar is read at those indices (`rescale_timesteps=False`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """ADM's "linear" schedule, float64."""
    scale = 1000 / num_timesteps
    return torch.linspace(beta_start * scale, beta_end * scale, num_timesteps, dtype=torch.float64)


def space_timesteps(num_timesteps: int, spec: str | int | Sequence[int]) -> list[int]:
    """The retained timesteps (increasing) for a respacing spec, as ADM reads it.

    * `"ddimN"`: the DDIM paper's striding, every k-th step from 0, for the integer k giving exactly N
      steps (`ddim20` of 1000 -> 0, 50, ..., 950; Diff-AE and DiffusionRig sample this way).
    * `N`, `"N"` or `"N1,N2,..."`: split [0, T) into equal sections and take N_i evenly spaced steps in
      section i, first and last included (`250` of 1000 -> 0, 4, 8, ..., 999).
    """
    if isinstance(spec, str) and spec.startswith("ddim"):
        count = int(spec[len("ddim"):])
        for stride in range(1, num_timesteps + 1):
            if len(range(0, num_timesteps, stride)) == count:
                return list(range(0, num_timesteps, stride))
        raise ValueError(f"no integer stride gives exactly {count} of {num_timesteps} steps")
    if isinstance(spec, str):
        counts = [int(part) for part in spec.split(",")]
    elif isinstance(spec, int):
        counts = [spec]
    else:
        counts = [int(part) for part in spec]
    size, extra = divmod(num_timesteps, len(counts))
    steps: list[int] = []
    start = 0
    for index, count in enumerate(counts):
        section = size + (1 if index < extra else 0)
        if not 1 <= count <= section:
            raise ValueError(f"cannot take {count} steps from a section of {section} timesteps")
        stride = (section - 1) / (count - 1) if count > 1 else 1.0
        steps.extend(start + round(k * stride) for k in range(count))
        start += section
    return steps


@dataclass(frozen=True)
class SpacedSteps:
    """The timesteps a sampler visits: original indices (increasing) and abar at each."""

    timesteps: tuple[int, ...]
    alphas_cumprod: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.timesteps)


@dataclass(frozen=True)
class DiffusionSchedule:
    """abar_t for t = 0..T-1 (float64)."""

    alphas_cumprod: torch.Tensor

    @classmethod
    def linear(cls, num_timesteps: int = 1000) -> DiffusionSchedule:
        return cls(torch.cumprod(1.0 - linear_betas(num_timesteps), dim=0))

    @property
    def num_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    def spaced(self, spec: str | int | Sequence[int]) -> SpacedSteps:
        steps = space_timesteps(self.num_timesteps, spec)
        return SpacedSteps(tuple(steps), tuple(float(self.alphas_cumprod[t]) for t in steps))
