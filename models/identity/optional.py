"""Importing optional dependencies on first use, with an error that says what to install.

dlib and onnxruntime are only needed by the identity scorers, so the pack imports without them;
the node that needs one fails with the pip command instead of a bare ModuleNotFoundError.
"""
from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names it and the pip command."""


def import_optional(module: str, pip_names: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the Python module '{module}', which could not be imported ({exc}). "
            f"Install it into ComfyUI's Python environment with: pip install {pip_names}") from exc
