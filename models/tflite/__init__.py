"""A small TFLite-graph runtime in PyTorch: read a .tflite file, run it as an nn.Module.

Enough of TFLite's builtin operators for mediapipe's face detector and face mesh models; anything
else fails at load time with `UnsupportedOperatorError` naming the operator and the file.
"""
from .module import TFLiteModule
from .ops import UnsupportedOperatorError
from .reader import TFLiteGraph, read_tflite

__all__ = ["TFLiteGraph", "TFLiteModule", "UnsupportedOperatorError", "read_tflite"]
