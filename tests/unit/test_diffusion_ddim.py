"""The ADM schedule, timestep respacing, and the reference DDIM sampler / inversion.

The inversion round trip needs a model that behaves like a denoiser. A UNet with random weights
alone does not: its "noise" is unrelated to x_t, so the last inversion step (to abar = 0) keeps
nothing of the image, and the DDIM ODE it defines amplifies errors on the way back. The test model
therefore uses the tiny random Diff-AE UNet the way trained denoisers are parametrised (EDM-style
skip): its x_0 guess is the optimal one for Gaussian data plus the UNet's output, scaled to vanish
as the noise does. The UNet (and z_sem) is still in every step.
"""
from __future__ import annotations

import math

import pytest
import torch

from models.diffusion import DiffusionSchedule, ddim_reverse, ddim_sample, ddim_step, linear_betas, space_timesteps
from test_diffusion_models import tiny_diffae

pytestmark = pytest.mark.usefixtures("one_thread")

DATA_STD = 0.5


@pytest.fixture(scope="module")
def schedule() -> DiffusionSchedule:
    return DiffusionSchedule.linear()


def test_linear_schedule_matches_adm(schedule):
    betas = linear_betas()
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert math.isclose(betas[0], 1e-4) and math.isclose(betas[-1], 0.02)
    abar = schedule.alphas_cumprod
    assert math.isclose(abar[0], 1 - 1e-4)
    sigma_max = math.sqrt((1 - abar[-1]) / abar[-1])  # ComfyUI's sqrt_linear 1e-4..2e-2 gives 157.41
    assert abs(sigma_max - 157.41) < 0.01
    assert torch.all(abar[1:] < abar[:-1])


def test_respacing_specs():
    assert space_timesteps(1000, "ddim20") == list(range(0, 1000, 50))
    assert space_timesteps(1000, "ddim250") == list(range(0, 1000, 4))
    even = space_timesteps(1000, 250)
    assert len(even) == 250 and even[:3] == [0, 4, 8] and even[-1] == 999
    assert space_timesteps(1000, "20") == space_timesteps(1000, [20])
    assert space_timesteps(100, "2,3") == [0, 49, 50, 74, 99]  # 24.5 rounds to even, as in ADM
    with pytest.raises(ValueError):
        space_timesteps(1000, "ddim300")  # no integer stride gives 300 steps
    with pytest.raises(ValueError):
        space_timesteps(10, 11)


def test_spaced_steps_read_abar_at_the_original_indices(schedule):
    spaced = schedule.spaced("ddim20")
    assert spaced.timesteps[-1] == 950 and len(spaced) == 20
    assert spaced.alphas_cumprod[3] == float(schedule.alphas_cumprod[150])


def test_a_ddim_step_up_and_back_down_with_the_same_noise_is_exact():
    x, eps = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    up = ddim_step(x, eps, 0.9, 0.2, clip_denoised=False)
    torch.testing.assert_close(ddim_step(up, eps, 0.2, 0.9, clip_denoised=False), x)


def gaussian_eps(schedule: DiffusionSchedule):
    """The exact noise prediction for data ~ N(0, DATA_STD^2): E[eps | x_t]."""
    abar = schedule.alphas_cumprod.float()

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = abar[t].view(-1, 1, 1, 1)
        return (1 - a).sqrt() * x / (a * DATA_STD ** 2 + 1 - a)

    return eps


def test_sampling_follows_the_probability_flow_of_gaussian_data(schedule):
    """For Gaussian data the DDIM ODE has a closed form: x_0 = x_T * s / sqrt(1 - abar_T + abar_T s^2)."""
    x_T = torch.randn(2, 3, 8, 8)
    a_T = float(schedule.alphas_cumprod[999])
    exact = x_T * DATA_STD / math.sqrt(1 - a_T + a_T * DATA_STD ** 2)
    errors = [(ddim_sample(gaussian_eps(schedule), x_T, schedule, steps, clip_denoised=False) - exact).abs().max()
              for steps in (10, 100, 1000)]
    # first order: ten times the steps, about a tenth of the error
    assert errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5
    assert errors[2] < 0.01 * exact.abs().max()


def denoiser_from_unet(model, schedule: DiffusionSchedule):
    """eps-model whose x_0 guess = c_skip * x_t / sqrt(abar) + c_out * UNet(x_t, t, z_sem) (see module doc)."""
    abar = schedule.alphas_cumprod.float()

    def eps(x: torch.Tensor, t: torch.Tensor, z_sem: torch.Tensor) -> torch.Tensor:
        a = abar[t].view(-1, 1, 1, 1)
        sigma = ((1 - a) / a).sqrt()
        x_bar = x / a.sqrt()
        c_skip = DATA_STD ** 2 / (sigma ** 2 + DATA_STD ** 2)
        c_out = sigma * DATA_STD / (sigma ** 2 + DATA_STD ** 2).sqrt()
        x0_guess = c_skip * x_bar + c_out * model(x, t, z_sem)
        return (x_bar - x0_guess) / sigma

    return eps


def test_ddim_sampling_is_deterministic_for_the_same_x_T(schedule):
    model = tiny_diffae()
    z_sem = torch.randn(2, 32)
    x_T = torch.randn(2, 3, 16, 16)
    first = ddim_sample(model, x_T, schedule, "ddim10", conds={"z_sem": z_sem})
    again = ddim_sample(model, x_T.clone(), schedule, "ddim10", conds={"z_sem": z_sem})
    other = ddim_sample(model, torch.randn(2, 3, 16, 16), schedule, "ddim10", conds={"z_sem": z_sem})
    assert torch.equal(first, again) and not torch.allclose(first, other)
    assert first.abs().max() <= 1  # clip_denoised: the last step returns the clamped x_0 guess


def test_inversion_then_sampling_reconstructs_better_with_more_steps(schedule):
    model = tiny_diffae()
    eps_model = denoiser_from_unet(model, schedule)
    x_0 = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    with torch.no_grad():
        conds = {"z_sem": model.encode(x_0)}
    curve = {}
    for steps in (10, 20, 50, 100):
        x_T = ddim_reverse(eps_model, x_0, schedule, f"ddim{steps}", conds=conds)
        x_rec = ddim_sample(eps_model, x_T, schedule, f"ddim{steps}", conds=conds)
        curve[steps] = (x_rec - x_0).pow(2).mean().sqrt().item()
    print("DDIM inversion -> reconstruction RMS error by steps:", {k: round(v, 4) for k, v in curve.items()})
    errors = list(curve.values())
    assert all(a > b for a, b in zip(errors, errors[1:])), curve
    assert errors[-1] < 0.05 and errors[-1] < errors[0] / 5, curve
