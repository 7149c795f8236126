"""Custom wire types of the pack. Values on them are immutable; nodes build new values.

FACE_DETECTIONS  models.faces.crops.FaceDetections: per image of a batch, the faces found (box,
                 score, 5 alignment points, 468-point face mesh), left to right.
FACE_CROP        models.faces.crops.FaceCrops: per crop of an IMAGE batch, the source frame index
                 and size and the similarity transform used to cut it; what paste-back needs.
FACE_RIG         models.rig.rig.FaceRig: a batch of fitted 3D faces (geometry, identity shape,
                 expression, action-unit edits, pose, jaw, eyes, orthographic camera, SH light,
                 albedo) pixel-aligned with the aligned crops they were fitted on.
RENDER_BUFFERS   models.rig.render.RigRender: the rig rendered into DiffusionRig's physical buffers,
                 a (B, 9, H, W) physic_cond in a named channel order plus every buffer (rendered,
                 normal, albedo, shading, depth, mask) and the posed mesh.
"""
from comfy_api.latest import io

FaceDetections = io.Custom("FACE_DETECTIONS")
FaceCrop = io.Custom("FACE_CROP")
FaceRig = io.Custom("FACE_RIG")
RenderBuffers = io.Custom("RENDER_BUFFERS")
