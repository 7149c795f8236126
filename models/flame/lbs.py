"""Linear blend skinning as in SMPL / FLAME, written from the model description.

Steps: add identity and expression blendshapes to the template; regress joint positions from
that shaped mesh; add pose-corrective blendshapes driven by (R - I) of every non-root joint;
pose the skeleton by forward kinematics along the kinematic tree; move every vertex by the
weighted blend of its joints' rigid transforms.

The skinning is written in *displacement* form, v' = s v + sum_j w_j [(G_j - I)(v - J_j) + d_j],
where G_j is joint j's world rotation, d_j how far the joint itself moved and s = sum_j w_j (1 for
FLAME). Expanding the brackets gives the usual sum_j w_j (G_j (v - J_j) + J'_j); this form makes
a zero pose return the input exactly and keeps vertices that no rotated joint influences
bit-for-bit in place, instead of up to float rounding.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .rotation import axis_angle_to_matrix


def blend_shapes(coefficients: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Offsets (B, V, 3) from coefficients (B, K) and blendshape directions (V, 3, K)."""
    return torch.einsum("bk,vck->bvc", coefficients, directions)


def regress_joints(j_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Joint positions (B, J, 3) as fixed linear combinations (J, V) of vertices (B, V, 3)."""
    return torch.einsum("jv,bvc->bjc", j_regressor, vertices)


def pose_features(rotations: torch.Tensor) -> torch.Tensor:
    """Inputs of the pose-corrective blendshapes: (R - I) of joints 1.. flattened row-major, (B, 9(J-1))."""
    eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    return (rotations[:, 1:] - eye).flatten(1)


def forward_kinematics(rotations: torch.Tensor, joints: torch.Tensor,
                       parents: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """World rotations (B, J, 3, 3) and joint displacements (B, J, 3) along the kinematic tree.

    Each joint turns about its own rest position; the root stays in place. A child's displacement
    is its parent's plus how the parent's world rotation swings the bone between them:
    d_i = d_p + (G_p - I)(J_i - J_p). Parents must precede their children.
    """
    eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    world = [rotations[:, 0]]
    shift = [torch.zeros_like(joints[:, 0])]
    for i in range(1, len(parents)):
        p = parents[i]
        bone = joints[:, i] - joints[:, p]
        shift.append(shift[p] + ((world[p] - eye) @ bone.unsqueeze(-1)).squeeze(-1))
        world.append(world[p] @ rotations[:, i])
    return torch.stack(world, 1), torch.stack(shift, 1)


def skin(vertices: torch.Tensor, weights: torch.Tensor, joints: torch.Tensor, world: torch.Tensor,
         shift: torch.Tensor) -> torch.Tensor:
    """Move vertices (B, V, 3) by the weighted (V, J) blend of the joints' rigid transforms."""
    eye = torch.eye(3, dtype=world.dtype, device=world.device)
    turn = world - eye                                                   # (B, J, 3, 3)
    offset = shift - (turn @ joints.unsqueeze(-1)).squeeze(-1)           # d_j - (G_j - I) J_j
    blended_turn = torch.einsum("vj,bjrc->bvrc", weights, turn)
    blended_offset = torch.einsum("vj,bjc->bvc", weights, offset)
    total = weights.sum(-1).unsqueeze(-1)                                # (V, 1), 1 for FLAME
    return total * vertices + (blended_turn @ vertices.unsqueeze(-1)).squeeze(-1) + blended_offset


def linear_blend_skinning(coefficients: torch.Tensor, pose: torch.Tensor, template: torch.Tensor,
                          directions: torch.Tensor, posedirs: torch.Tensor, j_regressor: torch.Tensor,
                          parents: Sequence[int], weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed vertices (B, V, 3) and posed joints (B, J, 3).

    coefficients (B, K) weight `directions` (V, 3, K); pose (B, 3J) holds one axis-angle per joint;
    posedirs (V, 3, 9(J-1)) are the pose-corrective blendshapes.
    """
    batch = coefficients.shape[0]
    shaped = template.unsqueeze(0) + blend_shapes(coefficients, directions)
    joints = regress_joints(j_regressor, shaped)
    rotations = axis_angle_to_matrix(pose.reshape(batch, -1, 3))
    posed = shaped + blend_shapes(pose_features(rotations), posedirs)
    world, shift = forward_kinematics(rotations, joints, parents)
    return skin(posed, weights, joints, world, shift), joints + shift
