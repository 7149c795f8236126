"""The 3D face rig: fit a face model to a photo, edit its parameters, render pixel-aligned buffers."""
