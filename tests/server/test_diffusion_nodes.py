"""Diff-AE and DiffusionRig as stock MODELs in a real ComfyUI, on tiny weights.

The decisive checks: sampling through ComfyUI's own SamplerCustomAdvanced ('ddim', ddim_uniform)
equals the reference DDIM loop of models/diffusion/ddim.py run here on the same weights and x_T, and
on a Diff-AE trained as a denoiser, DiffAEEncode's inversion followed by the stock sampler
reconstructs the image better and better as the steps grow.
"""
import uuid

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from comfy_runner import ComfyError
from diffusion_trained import TRAINED_DIFFAE, TRAINED_DIFFAE_FILE, gradient_images, write_trained_tiny_diffae
from diffusion_weights import OFFICIAL_RIG_FILE, TINY_DIFFAE, TINY_DIFFAE_FILE, write_tiny_diffusion_models
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
def trained(comfy):
    """The tiny Diff-AE trained as a denoiser (tests/fixtures/diffusion_trained.py), staged once."""
    return write_trained_tiny_diffae(comfy.base / "models" / "likeness" / "diffusion")


def write_png(rgb: np.ndarray, path) -> None:
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)


def png_tensor(path) -> torch.Tensor:
    """A PNG as the pixel-space latent VAEEncode / DiffAEEncode make of it: (1, 3, H, W) in [-1, 1]."""
    image = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).float() / 255
    return image.permute(2, 0, 1)[None] * 2 - 1


@pytest.fixture(scope="module")
def face_png(comfy, tmp_path_factory):
    """A smooth 16x16 colour image: values a tiny model can reconstruct, exactly representable in PNG."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    path = tmp_path_factory.mktemp("diffae") / "smooth.png"
    write_png(np.stack([xx, yy, 1 - 0.5 * (xx + yy)], -1), path)
    return path, comfy.copy_input(path)


@pytest.fixture(scope="module")
def gradient_png(comfy, tmp_path_factory):
    """An unseen image from the trained model's distribution (smooth colour gradients), 16x16 PNG."""
    image = gradient_images(1, torch.Generator().manual_seed(7), TRAINED_DIFFAE.image_size)[0]
    path = tmp_path_factory.mktemp("diffae") / "gradient.png"
    write_png(((image.permute(1, 2, 0).numpy() + 1) / 2), path)
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


def batch_graph(image_name: str) -> dict:
    """Two different z_sem conditionings of the tiny Diff-AE: the image's ("3") and its negative's ("5")."""
    return encode_graph(image_name, 0) | {
        "4": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "5": {"class_type": "LikenessDiffAEEncode", "inputs": {
            "model": ["2", 0], "encoder": ["2", 1], "image": ["4", 0], "inversion_steps": 0,
            "scheduler": "ddim_uniform"}}}


def sample_graph(positive: list, batch: int, fixed_seed: bool = False) -> dict:
    """KSampler (seed 11, 3 steps) from empty latents (node "11" saves the result)."""
    graph = {"7": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": SIZE, "height": SIZE,
                                                                              "batch_size": batch}},
             "10": {"class_type": "KSampler", "inputs": {
                 "model": ["2", 0], "positive": positive, "negative": ["3", 1], "latent_image": ["7", 0],
                 "seed": 11, "steps": 3, "cfg": 1.0, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                 "denoise": 1.0}},
             "11": {"class_type": "SaveLatent", "inputs": {"samples": ["10", 0], "filename_prefix": tag()}}}
    if fixed_seed:
        graph["8"] = {"class_type": "LatentBatchSeedBehavior", "inputs": {"samples": ["7", 0],
                                                                          "seed_behavior": "fixed"}}
        graph["10"]["inputs"]["latent_image"] = ["8", 0]
    return graph


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
    x = png_tensor(face_png[0])
    with torch.no_grad():
        z_sem = model.encode(x)
    # the node's inversion is DDIM inversion: from sigma 1e-4 (model at t=0) up through the same levels
    levels = [1 / (1 + 1e-8)] + [float(schedule.alphas_cumprod[t]) for t in timesteps]
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


def decode_graph(encoded: dict, steps: int) -> dict:
    """KSamplerAdvanced with noise disabled from DiffAEEncode's x_T, then SaveLatent as node "11"."""
    return encoded | {
        "10": {"class_type": "KSamplerAdvanced", "inputs": {
            "model": ["2", 0], "add_noise": "disable", "noise_seed": 0, "steps": steps, "cfg": 1.0,
            "sampler_name": "ddim", "scheduler": "ddim_uniform", "positive": ["3", 0], "negative": ["3", 1],
            "latent_image": ["3", 2], "start_at_step": 0, "end_at_step": 10000,
            "return_with_leftover_noise": "disable"}},
        "11": {"class_type": "SaveLatent", "inputs": {"samples": ["10", 0], "filename_prefix": tag()}}}


def test_inversion_round_trip_error_falls_as_steps_grow(comfy, trained, gradient_png):
    """DiffAEEncode's DDIM inversion, then the stock KSamplerAdvanced back (noise off, same steps), on a
    Diff-AE trained as a denoiser: what remains is DDIM's discretisation error, so it falls as the steps
    grow, roughly in proportion from 10 steps on. (At 5 steps the round trip is far from converged: for
    this image the error is still larger than at 10, for some images of the distribution about equal.)"""
    path, name = gradient_png
    x_0 = png_tensor(path)
    curve = {}
    for steps in (5, 10, 20, 50, 100):
        prompt = decode_graph(encode_graph(name, steps, TRAINED_DIFFAE_FILE), steps)
        curve[steps] = (saved_latent(comfy, comfy.run(prompt), "11") - x_0).abs().mean().item()
    print("\nDiffAEEncode inversion -> KSamplerAdvanced, mean abs error ([-1, 1] scale) by steps:",
          {k: round(v, 4) for k, v in curve.items()})
    errors = list(curve.values())
    assert all(a > b for a, b in zip(errors, errors[1:])), curve
    assert all(a > 1.15 * b for a, b in zip(errors[1:], errors[2:])), curve
    assert curve[100] < 0.05 and curve[100] < curve[10] / 5, curve


def test_ddim_invert_node_equals_diffae_encode_inversion(comfy, trained, gradient_png):
    """The generic DDIM Inversion node under DiffAEEncode's z_sem gives DiffAEEncode's own x_T."""
    prompt = encode_graph(gradient_png[1], 8, TRAINED_DIFFAE_FILE) | {
        "4": {"class_type": "LikenessDDIMInvert", "inputs": {"model": ["2", 0], "conditioning": ["3", 0],
                                                             "image": ["1", 0], "steps": 8,
                                                             "scheduler": "ddim_uniform"}},
        "5": {"class_type": "SaveLatent", "inputs": {"samples": ["3", 2], "filename_prefix": tag()}},
        "6": {"class_type": "SaveLatent", "inputs": {"samples": ["4", 0], "filename_prefix": tag()}}}
    entry = comfy.run(prompt)
    encoded, inverted = saved_latent(comfy, entry, "5"), saved_latent(comfy, entry, "6")
    assert encoded.abs().max() > 1  # really x_T (sigma scale), not the image
    torch.testing.assert_close(inverted, encoded, rtol=0, atol=0)


def test_conditioning_batch_samples_each_item_with_its_own_condition_and_shared_noise(comfy, weights, face_png):
    """Batch of two z_sem conditions + LatentBatchSeedBehavior 'fixed' = the two single runs with that seed."""
    single = {}
    for which in ("3", "5"):
        prompt = batch_graph(face_png[1]) | sample_graph([which, 0], batch=1)
        single[which] = saved_latent(comfy, comfy.run(prompt), "11")
    prompt = batch_graph(face_png[1]) | {
        "6": {"class_type": "LikenessDiffusionConditioningBatch", "inputs": {"conditioning_1": ["3", 0],
                                                                             "conditioning_2": ["5", 0]}},
    } | sample_graph(["6", 0], batch=2, fixed_seed=True)
    batched = saved_latent(comfy, comfy.run(prompt), "11")
    assert batched.shape[0] == 2 and not torch.allclose(single["3"], single["5"])
    torch.testing.assert_close(batched[:1], single["3"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(batched[1:], single["5"], rtol=1e-4, atol=1e-4)
    # without 'fixed' every item of a batch gets its own noise: the first matches, the second does not
    prompt = batch_graph(face_png[1]) | {
        "6": {"class_type": "LikenessDiffusionConditioningBatch", "inputs": {"conditioning_1": ["3", 0],
                                                                             "conditioning_2": ["3", 0]}},
    } | sample_graph(["6", 0], batch=2)
    own_noise = saved_latent(comfy, comfy.run(prompt), "11")
    torch.testing.assert_close(own_noise[:1], single["3"], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(own_noise[1:], single["3"], atol=1e-2)


def test_conditioning_batch_refuses_entries_with_per_item_settings(comfy, weights, face_png):
    """A time range (or area, strength) cannot be kept per item of a batch, so it is refused, not dropped."""
    prompt = batch_graph(face_png[1]) | {
        "9": {"class_type": "ConditioningSetTimestepRange", "inputs": {"conditioning": ["3", 0], "start": 0.0,
                                                                        "end": 0.5}},
        "6": {"class_type": "LikenessDiffusionConditioningBatch", "inputs": {"conditioning_1": ["3", 0],
                                                                             "conditioning_2": ["9", 0]}},
    } | sample_graph(["6", 0], batch=2)
    with pytest.raises(ComfyError, match=r"conditioning_2 carries settings \['end_percent', 'start_percent'\]"):
        comfy.run(prompt)


def test_diffusionrig_condition_from_face_fit_samples_and_inverts(comfy):
    """On the 256 px stand-in (staged by conftest): KSampler with cfg runs, and the DDIM Inversion node
    equals the stock composition BasicScheduler -> FlipSigmas -> SamplerCustomAdvanced (no noise, euler)."""
    steps = 3
    prompt = fit_graph(comfy, PORTRAIT)
    prompt |= {"4": {"class_type": "LikenessRenderBuffers", "inputs": {"face_rig": ["3", 0],
                                                                       "channel_order": "diffusionrig"}},
               "5": {"class_type": "LikenessDiffusionLoader", "inputs": {"model_file": OFFICIAL_RIG_FILE}},
               "6": {"class_type": "LikenessDiffusionRigCondition", "inputs": {
                   "encoder": ["5", 1], "buffers": ["4", 0], "image": ["2", 0]}},
               "7": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
               "8": {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": ["7", 0]}},
               "9": {"class_type": "KSampler", "inputs": {
                   "model": ["5", 0], "positive": ["6", 0], "negative": ["6", 1], "latent_image": ["8", 0],
                   "seed": 1, "steps": 2, "cfg": 1.5, "sampler_name": "ddim", "scheduler": "ddim_uniform",
                   "denoise": 0.5}},
               "10": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0], "vae": ["7", 0]}},
               "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": tag()}},
               "12": {"class_type": "LikenessDDIMInvert", "inputs": {
                   "model": ["5", 0], "conditioning": ["6", 0], "image": ["2", 0], "steps": steps,
                   "scheduler": "ddim_uniform"}},
               "13": {"class_type": "SaveLatent", "inputs": {"samples": ["12", 0], "filename_prefix": tag()}},
               "14": {"class_type": "BasicScheduler", "inputs": {"model": ["5", 0], "scheduler": "ddim_uniform",
                                                                 "steps": steps, "denoise": 1.0}},
               "15": {"class_type": "FlipSigmas", "inputs": {"sigmas": ["14", 0]}},
               "16": {"class_type": "DisableNoise", "inputs": {}},
               "17": {"class_type": "BasicGuider", "inputs": {"model": ["5", 0], "conditioning": ["6", 0]}},
               "18": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
               "19": {"class_type": "SamplerCustomAdvanced", "inputs": {
                   "noise": ["16", 0], "guider": ["17", 0], "sampler": ["18", 0], "sigmas": ["15", 0],
                   "latent_image": ["8", 0]}},
               "20": {"class_type": "SaveLatent", "inputs": {"samples": ["19", 0], "filename_prefix": tag()}},
               "21": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": tag()}}}
    entry = comfy.run(prompt, timeout=600)
    image = np.asarray(Image.open(comfy.outputs_by_node(entry)["11"][0]))
    assert image.shape == (256, 256, 3) and image.std() > 1
    node, stock, crop = (saved_latent(comfy, entry, n) for n in ("13", "20", "21"))
    assert node.shape == crop.shape == (1, 3, 256, 256)
    assert (node - crop).abs().mean() > 1e-2  # the model moved it (the stand-in's noise estimates are small)
    torch.testing.assert_close(node, stock, rtol=1e-5, atol=1e-4)


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
