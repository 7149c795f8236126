"""Pure PyTorch / numpy model code of the Likeness pack.

Nothing under models/ imports ComfyUI, so every network, the rig and the loaders can be tested and
trained outside it (tests/unit/test_models_standalone.py proves it).
"""
