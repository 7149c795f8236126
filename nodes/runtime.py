"""Bridges from ComfyUI's run time (devices, progress bar, interrupt) to the pure models/ code."""
from __future__ import annotations

from typing import Callable

import comfy.model_management as mm
import comfy.utils


def progress(total: int) -> Callable[[int, int], None]:
    """A callback `(done, total)` driving ComfyUI's progress bar for the running node."""
    bar = comfy.utils.ProgressBar(max(1, total))

    def on_progress(done: int, total_now: int) -> None:
        bar.update_absolute(done, max(1, total_now))

    return on_progress


def check_interrupt() -> None:
    """Raises ComfyUI's interrupt exception when the user pressed Cancel."""
    mm.throw_exception_if_processing_interrupted()


def compute_device():
    return mm.get_torch_device()
