"""Network trunks shared by several models (kept free of torchvision)."""
