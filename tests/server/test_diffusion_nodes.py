"""Diff-AE and DiffusionRig as stock MODELs in a real ComfyUI, on tiny random weights.

The decisive check: sampling through ComfyUI's own SamplerCustomAdvanced ('ddim', ddim_uniform)
equals the reference DDIM loop of models/diffusion/ddim.py run here on the same weights and x_T.
"""
import uuid

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from diffusion_weights import (GENTLE_DIFFAE_FILE, TINY_DIFFAE, TINY_DIFFAE_FILE, TINY_RIG_FILE,
                               write_tiny_diffusion_models)
from models.diffusion import DiffusionSchedule, SpacedSteps, ddim_sample, ddim_step, load_diffae
from test_rig_nodes import PORTRAIT, fit_graph

pytestmark = pytest.mark.server
SIZE = 16


def tag() -> str:
    return f"t_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def weights(comfy):
    return write_tiny_diffusion_models(comfy.base / "models" / "likeness" / "diffusion")


@pytest.fixture(scope="module")
def face_png(comfy, tmp_path_factory):
    """A smooth 16x16 colour image: values a tiny model can reconstruct, exactly representable in PNG."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    rgb = np.stack([xx, yy, 1 - 0.5 * (xx + yy)], -1)
    path = tmp_path_factory.mktemp("diffae") / "smooth.png"
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
    return path, comfy.copy_input(path)


class VisitedSteps:
    """The reference loop's schedule restricted to explicit DDPM indices (ADM's specs cannot say 1, 101, ...)."""

    def __init__(self, schedule: DiffusionSchedule, timesteps: list[int]):
        self.steps = SpacedSteps(tuple(timesteps), tuple(float(schedule.alphas_cumprod[t]) for t in timesteps))

    def spaced(self, _spec) -> SpacedSteps:
        return self.steps


def saved_latent(comfy, entry, node: str) -> torch.Tensor:
    item = entry["outputs"][node]["latents"][0]
    return load_file(str(comfy.output_dir / item["subfolder"] / item["filename"]))["latent_tensor"]


def encode_graph(image_name: str, steps: int, model_file: str = TINY_DIFFAE_FILE) -> dict:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
            "2": {"class_type": "LikenessDiffusionLoader", "inputs": {"model_file": model_file}},
            "3": {"class_type": "LikenessDiffAEEncode", "inputs": {
                "model": ["2", 0], "encoder": ["2", 1], "image": ["1", 0], "inversion_steps": steps,
                "scheduler": "ddim_uniform"}}}


def test_diffae_samples_with_the_stock_ksampler_and_pixel_space_vae(comfy, weights, face_png):
    prompt = encode_graph(face_png[1], 0)
    prompt |= {"4": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": 32, "height": 32,
                                                                               "batch_size": 1}},
               "5": {"class_type": "KSampler", "inputs": {
                   "model": ["2", 0], "positive": ["3", 0], "negative": ["3", 1], "latent_image": ["4", 0],
                   "seed": 3, "steps": 4, "cfg": 1.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                   "denoise": 1.0}},
               "6": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
               "7": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["6", 0]}},
               "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": tag()}}}
    entry = comfy.run(prompt)
    image = np.asarray(Image.open(comfy.outputs_by_node(entry)["8"][0]))
    assert image.shape == (32, 32, 3) and image.std() > 1


def test_comfy_sampling_equals_the_reference_ddim_loop(comfy, weights, face_png):
    steps = 10
    prompt = encode_graph(face_png[1], steps)
    prompt |= {"4": {"class_type": "SaveLatent", "inputs": {"samples": ["3", 2], "filename_prefix": tag()}},
               "5": {"class_type": "BasicScheduler", "inputs": {"model": ["2", 0], "scheduler": "ddim_uniform",
                                                                "steps": steps, "denoise": 1.0}},
               "6": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "ddim"}},
               "7": {"class_type": "DisableNoise", "inputs": {}},
               "8": {"class_type": "BasicGuider", "inputs": {"model": ["2", 0], "conditioning": ["3", 0]}},
               "9": {"class_type": "SamplerCustomAdvanced", "inputs": {
                   "noise": ["7", 0], "guider": ["8", 0], "sampler": ["6", 0], "sigmas": ["5", 0],
                   "latent_image": ["3", 2]}},
               "10": {"class_type": "SaveLatent", "inputs": {"samples": ["9", 0], "filename_prefix": tag()}}}
    entry = comfy.run(prompt)
    x_T_sigma, comfy_x0 = saved_latent(comfy, entry, "4"), saved_latent(comfy, entry, "10")

    model = load_diffae(weights[TINY_DIFFAE_FILE], TINY_DIFFAE)
    schedule = DiffusionSchedule.linear()
    timesteps = list(range(1, 1000, 1000 // steps))  # ComfyUI's ddim_uniform visits these DDPM indices
    abar = float(schedule.alphas_cumprod[timesteps[-1]])
    x_T = x_T_sigma.double() * abar ** 0.5  # sigma scale -> DDPM scale: x / sqrt(1 + sigma^2)
    image = torch.from_numpy(np.array(Image.open(face_png[0]).convert("RGB"))).float() / 255
    with torch.no_grad():
        z_sem = model.encode(image.permute(2, 0, 1)[None] * 2 - 1)
    # the node's inversion is DDIM inversion: from sigma 1e-4 (model at t=0) up through the same levels
    levels = [1 / (1 + 1e-8)] + [float(schedule.alphas_cumprod[t]) for t in timesteps]
    x = image.permute(2, 0, 1)[None] * 2 - 1
    with torch.no_grad():
        for i, t in enumerate([0] + timesteps[:-1]):
            x = ddim_step(x, model(x, torch.tensor([t]), z_sem), levels[i], levels[i + 1], False)
    x_k = x / abar ** 0.5  # float32 rounding happens in ComfyUI's sigma scale, so compare there
    inv_diff = (x_T_sigma - x_k).abs().max().item()
    print(f"\nDiffAEEncode inversion vs reference DDIM inversion: max abs diff {inv_diff:.2e} "
          f"(sigma scale, x_T max {x_k.abs().max().item():.1f})")
    assert inv_diff <= 5e-5 * x_k.abs().max().item()
    reference = ddim_sample(model, x_T.float(), VisitedSteps(schedule, timesteps), None, conds={"z_sem": z_sem},
                            clip_denoised=False)
    diff, scale = (comfy_x0 - reference).abs().max().item(), reference.abs().max().item()
    print(f"\nComfyUI ddim vs reference DDIM, {steps} steps: max abs diff {diff:.2e} (output max {scale:.1f})")
    # float32 rounding only: random weights amplify (x_T * (1 + 1e-7) alone moves the reference ~3e-7 relative)
    assert diff <= 1e-5 * max(scale, 1.0)


def test_inversion_then_decoding_runs_through_ksampler_advanced(comfy, weights, face_png):
    """Encode -> x_T -> KSamplerAdvanced (noise off) runs; the error curve is reported, not asserted:
    random weights are no denoiser, so DDIM's round trip does not converge for them (the pure-math
    loop shows the same curve; exactness of each direction is checked against the reference above)."""
    image = torch.from_numpy(np.array(Image.open(face_png[0]).convert("RGB"))).float() / 255
    x_0 = image.permute(2, 0, 1)[None] * 2 - 1
    errors = {}
    for steps in (5, 20):
        prompt = encode_graph(face_png[1], steps, GENTLE_DIFFAE_FILE)
        prompt |= {"4": {"class_type": "KSamplerAdvanced", "inputs": {
                       "model": ["2", 0], "add_noise": "disable", "noise_seed": 0, "steps": steps, "cfg": 1.0,
                       "sampler_name": "ddim", "scheduler": "ddim_uniform", "positive": ["3", 0],
                       "negative": ["3", 1], "latent_image": ["3", 2], "start_at_step": 0, "end_at_step": 10000,
                       "return_with_leftover_noise": "disable"}},
                   "5": {"class_type": "SaveLatent", "inputs": {"samples": ["4", 0], "filename_prefix": tag()}}}
        errors[steps] = (saved_latent(comfy, comfy.run(prompt), "5") - x_0).abs().mean().item()
    print("\nDDIM inversion -> reconstruction, mean abs error by steps:", errors)
    assert all(np.isfinite(e) for e in errors.values())


def test_diffusionrig_condition_from_face_fit_runs_through_ksampler(comfy, weights):
    prompt = fit_graph(comfy, PORTRAIT)
    prompt |= {"4": {"class_type": "LikenessRenderBuffers", "inputs": {"face_rig": ["3", 0],
                                                                       "channel_order": "diffusionrig"}},
               "5": {"class_type": "LikenessDiffusionLoader", "inputs": {"model_file": TINY_RIG_FILE}},
               "6": {"class_type": "LikenessDiffusionRigCondition", "inputs": {
                   "encoder": ["5", 1], "buffers": ["4", 0], "image": ["2", 0]}},
               "7": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
               "8": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["7", 0]}},
               "9": {"class_type": "KSampler", "inputs": {
                   "model": ["5", 0], "positive": ["6", 0], "negative": ["6", 1], "latent_image": ["8", 0],
                   "seed": 1, "steps": 2, "cfg": 1.5, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                   "denoise": 0.5}},
               "10": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0], "vae": ["7", 0]}},
               "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": tag()}}}
    entry = comfy.run(prompt, timeout=600)
    image = np.asarray(Image.open(comfy.outputs_by_node(entry)["11"][0]))
    assert image.shape == (256, 256, 3) and image.std() > 1


def test_zsem_direction_saves_loads_and_moves(comfy, weights, face_png):
    prompt = encode_graph(face_png[1], 0)
    prompt |= {"4": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
               "5": {"class_type": "LikenessDiffAEEncode", "inputs": {
                   "model": ["2", 0], "encoder": ["2", 1], "image": ["4", 0], "inversion_steps": 0,
                   "scheduler": "ddim_uniform"}},
               "6": {"class_type": "LikenessZSemDirection", "inputs": {"with_attribute": ["5", 0],
                                                                       "without_attribute": ["3", 0]}},
               "7": {"class_type": "LikenessSaveZSemDirection", "inputs": {"direction": ["6", 0],
                                                                           "filename_prefix": tag()}}}
    label = comfy.run(prompt)["outputs"]["7"]["text"][0]
    spec = comfy.request("/object_info/LikenessLoadZSemDirection")["LikenessLoadZSemDirection"]
    assert label in spec["input"]["required"]["direction_file"][1]["options"]
    prompt = encode_graph(face_png[1], 0)
    prompt |= {"4": {"class_type": "LikenessLoadZSemDirection", "inputs": {"direction_file": label}},
               "5": {"class_type": "LikenessZSemMove", "inputs": {"conditioning": ["3", 0], "direction": ["4", 0],
                                                                  "strength": 0.5}},
               "6": {"class_type": "LikenessZSemBlend", "inputs": {"a": ["3", 0], "b": ["5", 0], "weight": 0.5,
                                                                   "method": "slerp"}},
               "7": {"class_type": "KSampler", "inputs": {
                   "model": ["2", 0], "positive": ["6", 0], "negative": ["3", 1], "latent_image": ["3", 2],
                   "seed": 0, "steps": 2, "cfg": 1.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                   "denoise": 0.3}},
               "8": {"class_type": "SaveLatent", "inputs": {"samples": ["7", 0], "filename_prefix": tag()}}}
    assert saved_latent(comfy, comfy.run(prompt), "8").shape == (1, 3, SIZE, SIZE)
