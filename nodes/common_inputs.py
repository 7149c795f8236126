"""Inputs several nodes share, defined once so their ranges and tooltips stay in step."""
from comfy_api.latest import io


def min_score_input() -> io.Float.Input:
    return io.Float.Input("min_score", default=0.5, min=0.05, max=0.99, step=0.01,
                          tooltip="Detector confidence a face needs to count. Lower it for small, dark or turned "
                                  "faces; raise it if non-faces are picked up.")


def max_detect_side_input() -> io.Int.Input:
    return io.Int.Input("max_detect_side", default=1024, min=256, max=8192, step=64,
                        tooltip="Frames larger than this (longest side, px) are searched on a downscaled copy; "
                                "landmarks and crops still use the full resolution. Lower is faster.")
