"""Training prompts: the same template once with the identifier and once with the class word.

CGDR compares the prediction for "a photo of f l" with the frozen model's prediction for "a photo
of person": identical text except that the class word stands where the identifier was.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_TEMPLATES = (
    "a photo of {}",
    "a close-up photo of {}",
    "a portrait photo of {}",
    "a photo of the face of {}",
    "a cropped photo of {}",
    "a good photo of {}",
)


@dataclass(frozen=True)
class PromptConfig:
    identifier: str = "f l"  # the official identifier: two CLIP tokens
    class_word: str = "person"
    templates: tuple[str, ...] = DEFAULT_TEMPLATES

    def __post_init__(self):
        if not self.templates:
            raise ValueError("give at least one prompt template")
        bad = [t for t in self.templates if t.count("{}") != 1]
        if bad:
            raise ValueError(f"each template needs exactly one '{{}}' where the subject goes: {bad}")


def sample_prompts(config: PromptConfig, batch: int, generator: torch.Generator | None = None
                   ) -> tuple[list[str], list[str]]:
    """`batch` random templates filled with the identifier and, in the same order, with the class word."""
    picks = torch.randint(len(config.templates), (batch,), generator=generator).tolist()
    with_identifier = [config.templates[i].format(config.identifier) for i in picks]
    with_class = [config.templates[i].format(config.class_word) for i in picks]
    return with_identifier, with_class
