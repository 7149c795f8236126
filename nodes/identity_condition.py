"""LikenessFace2DiffusionCondition: a prompt whose identifier carries a face identity, for stock samplers.

The prompt is tokenised by the CLIP's own tokenizer and encoded by its own text encoder, exactly as
CLIPTextEncode does, except that the identifier's two token ids are replaced by tensors (ComfyUI's
textual-inversion route). See models/identity/injection.py for why each tensor is the mapped vector
minus that position's embedding: the transformer then starts from the mapped vectors at those two
positions, as in the official code, and from the usual token + position sum everywhere else.
"""
from __future__ import annotations

import torch
from comfy_api.latest import io

from ..models.identity import MAPPING_FILE
from ..models.identity.injection import IdentifierNotFoundError, inject_identifier
from .identity_files import f2d_files, mapping_network
from .identity_wires import FaceExpressionWire, FaceId

SD1_KEY = "l"  # SD1Tokenizer's key for its CLIP-L token lists


def sd1_text_encoder(clip):
    """The CLIP-L text model of a stock SD1.x CLIP, or a clear error for any other text encoder."""
    model = getattr(clip.cond_stage_model, "clip_l", None)
    tokenizer = getattr(clip.tokenizer, "clip_l", None)
    if model is None or tokenizer is None or hasattr(clip.cond_stage_model, "clip_g"):
        raise ValueError(f"Face2Diffusion Condition needs a Stable Diffusion 1.x CLIP (CLIP-L text encoder); got "
                         f"{type(clip.cond_stage_model).__name__}")
    return model.transformer.text_model, tokenizer


def identifier_token_ids(clip, tokenizer, identifier: str) -> list[int]:
    """The token ids the identifier words become, without start, end and padding tokens."""
    chunk = clip.tokenize(identifier)[SD1_KEY][0]
    ids = []
    for token, *_ in chunk[1:]:
        if not isinstance(token, int) or token == tokenizer.end_token:
            break
        ids.append(token)
    if len(ids) != 2:
        raise ValueError(f"the identifier '{identifier}' must be two CLIP tokens (Face2Diffusion maps a face to "
                         f"two token embeddings); it is {len(ids)}. The official identifier is 'f l'.")
    return ids


def batch_conditionings(conds: list[list]) -> list:
    """One conditioning whose tensors stack the per-identity conditionings along the batch."""
    if len(conds) == 1:
        return conds[0]
    out = []
    for entries in zip(*conds):
        extra = dict(entries[0][1])
        pooled = [e[1].get("pooled_output") for e in entries]
        if all(p is not None for p in pooled):
            extra["pooled_output"] = torch.cat(pooled)
        out.append([torch.cat([e[0] for e in entries]), extra])
    return out


def pair_rows(face_id, face_expression, mapping) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """(identity rows, expression input, blend strength) for the mapping network.

    Without an expression the official null vector is used. The null source scales it; codes are
    blended from it by the strength (Img2TextMapping.expression_input). N identities and N codes
    pair up row by row; one identity takes every code (one person, several expressions) and one
    code goes with every identity.
    """
    features = face_id.features
    if face_expression is None:
        return features, None, 1.0
    if face_expression.codes is None:
        null = face_expression.strength * mapping.null_exp.detach()
        return features, null.expand(len(features), -1), 1.0
    codes = face_expression.codes
    n, m = len(features), len(codes)
    if n != m and 1 not in (n, m):
        raise ValueError(f"Face2Diffusion Condition: {n} identities and {m} expression codes; give as many "
                         f"of each, or one of either")
    rows = max(n, m)
    return features.expand(rows, -1), codes.expand(rows, -1), face_expression.strength


class Face2DiffusionCondition(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        options, default = f2d_files(MAPPING_FILE)
        return io.Schema(
            node_id="LikenessFace2DiffusionCondition",
            display_name="Face2Diffusion Condition",
            category="Likeness/Identity",
            description="Encodes a prompt for a Stable Diffusion 1.x model with a person's identity in it "
                        "(Face2Diffusion): write the identifier (official: 'f l') where the person goes, e.g. "
                        "'a photo of f l person as a chef'. The mapping network turns the FACE_ID into two CLIP "
                        "input embeddings that replace the identifier's two tokens before the text transformer "
                        "runs; the rest is CLIPTextEncode. Use the result as positive conditioning of any "
                        "stock sampler. Several identities (or one identity with several expression codes) give "
                        "a conditioning batch, one entry per pair. "
                        "Needs f2d_mapping.safetensors in models/likeness/face2diffusion.",
            inputs=[
                io.Clip.Input("clip", tooltip="The CLIP of a Stable Diffusion 1.x checkpoint (Face2Diffusion was "
                                              "trained on SD 1.4)."),
                io.String.Input("text", multiline=True, default="a photo of f l person",
                                tooltip="The prompt; it must contain the identifier. Weights such as (f l:1.1) "
                                        "work as in CLIPTextEncode."),
                FaceId.Input("face_id", tooltip="The identity from MSID Encoder."),
                io.Combo.Input("mapping_file", options=options, default=default,
                               tooltip="The converted mapping network in models/likeness/face2diffusion."),
                io.String.Input("identifier", default="f l",
                                tooltip="The two-token word pair replaced by the identity. Face2Diffusion was "
                                        "trained with 'f l'; change it only if the prompt needs those letters."),
                FaceExpressionWire.Input("face_expression", optional=True,
                                         tooltip="Expression input from Expression Guidance (null vector, rig or "
                                                 "photo expression codes); without it the official learned null "
                                                 "vector is used."),
            ],
            outputs=[io.Conditioning.Output(display_name="conditioning",
                                            tooltip="Text conditioning with the identity injected.")],
        )

    @classmethod
    def execute(cls, clip, text: str, face_id, mapping_file: str, identifier: str,
                face_expression=None) -> io.NodeOutput:
        text_model, tokenizer = sd1_text_encoder(clip)
        ids = identifier_token_ids(clip, tokenizer, identifier.strip())
        mapping = mapping_network(mapping_file)
        features, expression, strength = pair_rows(face_id, face_expression, mapping)
        with torch.no_grad():
            first, last = mapping(features, expression=expression, expression_strength=strength)
        position_table = text_model.embeddings.position_embedding.weight
        chunks = clip.tokenize(text)[SD1_KEY]
        conds = []
        for row in range(len(features)):
            vectors = torch.stack([first[row], last[row]])
            try:
                injected, _ = inject_identifier(chunks, ids, vectors, position_table)
            except IdentifierNotFoundError:
                raise ValueError(f"Face2Diffusion Condition: the prompt does not contain the identifier "
                                 f"'{identifier.strip()}'. Write it where the person belongs, e.g. 'a photo of "
                                 f"{identifier.strip()} person'.") from None
            conds.append(clip.encode_from_tokens_scheduled({SD1_KEY: injected}))
        return io.NodeOutput(batch_conditionings(conds))
