"""The denoising objective (models/diffusion/training.py) and the trained test model built on it."""
from __future__ import annotations

import pytest
import torch

from diffusion_trained import TRAINED_DIFFAE, gradient_images
from models.diffusion import DiffAEAutoencoder, DiffusionSchedule
from models.diffusion.training import denoising_loss, q_sample

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def schedule() -> DiffusionSchedule:
    return DiffusionSchedule.linear()


def test_q_sample_mixes_image_and_noise_by_the_schedule(schedule):
    x_0, noise = torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    t = torch.tensor([0, 500, 999])
    x_t = q_sample(x_0, t, noise, schedule)
    for i, step in enumerate(t.tolist()):
        abar = float(schedule.alphas_cumprod[step])
        torch.testing.assert_close(x_t[i], abar ** 0.5 * x_0[i] + (1 - abar) ** 0.5 * noise[i])
    assert (x_t[0] - x_0[0]).abs().max() < 0.05 and (x_t[2] - noise[2]).abs().max() < 0.3


def test_denoising_loss_is_the_error_of_the_noise_estimate_at_the_drawn_timestep(schedule):
    """An oracle that knows x_0 recovers the noise exactly (loss 0); predicting zero costs E[eps^2] = 1."""
    x_0 = torch.rand(64, 3, 8, 8) * 2 - 1
    abar = schedule.alphas_cumprod.float()

    def oracle(x_t, t, offset):
        a = abar[t].view(-1, 1, 1, 1)
        return (x_t - a.sqrt() * x_0) / (1 - a).sqrt() + offset

    exact = denoising_loss(oracle, x_0, schedule, conds={"offset": torch.tensor(0.0)},
                           generator=torch.Generator().manual_seed(0))
    biased = denoising_loss(oracle, x_0, schedule, conds={"offset": torch.tensor(0.5)},
                            generator=torch.Generator().manual_seed(0))
    zero = denoising_loss(lambda x_t, t: torch.zeros_like(x_t), x_0, schedule,
                          generator=torch.Generator().manual_seed(0))
    assert exact.item() < 1e-8
    assert abs(biased.item() - 0.25) < 1e-4  # the conds reach the model
    assert abs(zero.item() - 1.0) < 0.05


def test_a_few_adam_steps_on_the_loss_train_the_diffae_jointly_with_its_encoder(schedule):
    torch.manual_seed(0)
    model = DiffAEAutoencoder(TRAINED_DIFFAE).train()
    encoder_before = [p.detach().clone() for p in model.encoder.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        x_0 = gradient_images(16, generator)
        loss = denoising_loss(model, x_0, schedule, conds={"z_sem": model.encode(x_0)}, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > 0.5 and last < 0.5 * first, losses
    moved = [not torch.equal(a, b) for a, b in zip(encoder_before, model.encoder.parameters())]
    assert all(moved), "z_sem's encoder must be trained through the decoder's loss"


def test_gradient_images_are_deterministic_and_in_range():
    a = gradient_images(4, torch.Generator().manual_seed(3))
    b = gradient_images(4, torch.Generator().manual_seed(3))
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1 and a.std() > 0.2
