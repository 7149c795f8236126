"""LikenessIdentitySimilarity: does an edited face still show the same person?"""
from __future__ import annotations

import functools

import folder_paths
import numpy as np
from comfy_api.latest import io

from ..models.identity import DLIB_SAME_PERSON_DISTANCE, cosine_similarity, l2_distance
from .common_inputs import max_detect_side_input, min_score_input
from .identity_files import largest_faces
from .model_files import folder_dirs

DLIB = "dlib (built-in, 128-d)"
ARCFACE_SAME_PERSON_COSINE = 0.3  # a common verification threshold for InsightFace's w600k / glint models
ON_MISSING = ("error", "report")


def arcface_files() -> list[str]:
    return sorted(n for n in folder_paths.get_filename_list("insightface") if n.lower().endswith(".onnx"))


@functools.lru_cache(maxsize=2)
def dlib_embedder():
    """dlib's model files from models/likeness/dlib when both are there, else from face-recognition-models."""
    from ..models.identity import DlibFaceEmbedder, find_dlib_model_files
    from ..models.loading import ModelFileError

    for folder in folder_dirs("likeness_dlib"):
        try:
            return DlibFaceEmbedder(find_dlib_model_files(folder))
        except ModelFileError:
            continue
    return DlibFaceEmbedder()


@functools.lru_cache(maxsize=2)
def arcface_embedder(name: str):
    from ..models.identity import ArcFaceOnnxEmbedder

    return ArcFaceOnnxEmbedder(folder_paths.get_full_path_or_raise("insightface", name))


def embed(scorer: str, images, faces) -> np.ndarray:
    if scorer == DLIB:
        embedder = dlib_embedder()
        return np.concatenate([embedder.embed(image, [face]) for image, face in zip(images[..., :3], faces)])
    return arcface_embedder(scorer).embed(images[..., :3], faces)


class IdentitySimilarity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessIdentitySimilarity",
            display_name="Identity Similarity",
            category="Likeness/Identity",
            description="Measures whether two batches of images show the same people: the largest face of image i "
                        "in A is compared with that of image i in B (a single image is compared with every image "
                        "of the other batch). dlib's 128-d face recognition model works without downloads "
                        "(pip install dlib-bin face-recognition-models) and also reports its L2 distance (same "
                        "person below 0.6); InsightFace ArcFace .onnx files in models/insightface can be picked "
                        "instead (pip install onnxruntime).",
            inputs=[
                io.Image.Input("images_a", tooltip="Reference photos, e.g. the originals."),
                io.Image.Input("images_b", tooltip="Photos to compare, e.g. the edits."),
                io.Combo.Input("scorer", options=[DLIB, *arcface_files()], default=DLIB,
                               tooltip="Face recognition model: dlib's built-in one, or an ArcFace .onnx from "
                                       "models/insightface (e.g. buffalo_l's w600k_r50.onnx)."),
                min_score_input(),
                max_detect_side_input(),
                io.Combo.Input("on_missing_face", options=list(ON_MISSING), default="error",
                               tooltip="When an image has no detectable face: stop with an error, or report the "
                                       "pair as not comparable and go on (for generated images that may have "
                                       "lost the face)."),
            ],
            outputs=[
                io.Float.Output(display_name="mean_similarity",
                                tooltip="Mean cosine similarity of the pairs that have faces; NaN when none has."),
                io.String.Output(display_name="report", tooltip="Per pair: cosine similarity, (dlib) L2 distance "
                                                                "and the same-person verdict."),
            ],
        )

    @classmethod
    def execute(cls, images_a, images_b, scorer: str, min_score: float, max_detect_side: int,
                on_missing_face: str = "error") -> io.NodeOutput:
        a, b = len(images_a), len(images_b)
        if a != b and 1 not in (a, b):
            raise ValueError(f"Identity Similarity: {a} and {b} images; give batches of one size, or one image")
        faces_a = largest_faces(images_a, None, min_score, max_detect_side)
        faces_b = largest_faces(images_b, None, min_score, max_detect_side)
        for name, faces in (("A", faces_a), ("B", faces_b)):
            missing = [i for i, f in enumerate(faces) if f is None]
            if missing and on_missing_face == "error":
                raise ValueError(f"Identity Similarity: no face found in image(s) {missing} of batch {name}")
        emb_a, emb_b = embed_present(scorer, images_a, faces_a), embed_present(scorer, images_b, faces_b)
        lines, scores = [f"scorer: {scorer}"], []
        for i in range(max(a, b)):
            ia, ib = (i if a > 1 else 0), (i if b > 1 else 0)
            absent = [side for side, rows, k in (("A", emb_a, ia), ("B", emb_b, ib)) if k not in rows]
            if absent:
                lines.append(f"pair {i}: not compared, no face found in {' and '.join(absent)}")
                continue
            cos = float(cosine_similarity(emb_a[ia], emb_b[ib])[0])
            scores.append(cos)
            lines.append(f"pair {i}: {verdict(scorer, cos, emb_a[ia], emb_b[ib])}")
        mean = float(np.mean(scores)) if scores else float("nan")
        lines.append(f"mean cosine similarity: {mean:.4f}" if scores
                     else "mean cosine similarity: none (no pair has a face on both sides)")
        return io.NodeOutput(mean, "\n".join(lines))


def embed_present(scorer: str, images, faces) -> dict[int, np.ndarray]:
    """Embeddings of the images that have a face, by image index."""
    present = [i for i, f in enumerate(faces) if f is not None]
    if not present:
        return {}
    rows = embed(scorer, images[present], [faces[i] for i in present])
    return dict(zip(present, rows))


def verdict(scorer: str, cos: float, emb_a: np.ndarray, emb_b: np.ndarray) -> str:
    if scorer == DLIB:
        dist = float(l2_distance(emb_a, emb_b)[0])
        same = dist < DLIB_SAME_PERSON_DISTANCE
        return (f"cosine {cos:.4f}, L2 {dist:.4f} ({'same person' if same else 'different people'}; "
                f"threshold {DLIB_SAME_PERSON_DISTANCE})")
    same = cos > ARCFACE_SAME_PERSON_COSINE
    return f"cosine {cos:.4f} ({'same person' if same else 'different people'}; threshold {ARCFACE_SAME_PERSON_COSINE})"
