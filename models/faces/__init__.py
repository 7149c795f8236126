"""Faces in, faces out: detection, dense landmarks, aligned crops and paste-back."""
