"""Custom wire types of the pack. Values on them are immutable; nodes build new values.

FACE_DETECTIONS  models.faces.crops.FaceDetections: per image of a batch, the faces found (box,
                 score, 5 alignment points, 468-point face mesh), left to right.
FACE_CROP        models.faces.crops.FaceCrops: per crop of an IMAGE batch, the source frame index
                 and size and the similarity transform used to cut it; what paste-back needs.
"""
from comfy_api.latest import io

FaceDetections = io.Custom("FACE_DETECTIONS")
FaceCrop = io.Custom("FACE_CROP")
