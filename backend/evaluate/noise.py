"""Accuracy under additive Gaussian noise x + N(0, σ²), clipped to [0, 1]: perturbation robustness.

One seeded torch.Generator draws a unit-normal noise tensor per block of samples, and every σ scales
the *same* draw (common random numbers): the curve is reproducible, σ = 0 is exactly clean accuracy,
and differences between σ values (or between models evaluated with one seed) are not sampling noise.
Blocks have a fixed size, so the result does not depend on `batch_size`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from backend.evaluate.inputs import check_batch_size, check_grid, check_inputs, model_device
from backend.metrics import EvalRow

NOISE_BLOCK = 1000  # samples per noise draw; fixed so results do not depend on batch_size


@torch.no_grad()
def noise_curve(model: nn.Module, x: Tensor, y: Tensor, sigmas, seed: int = 0,
                batch_size: int = 1000) -> list[float]:
    """Accuracy at each σ (pixel units) of x + σ·ε, ε ~ N(0, I) drawn from `seed`, clipped to [0, 1]."""
    x = check_inputs(model, x, y)
    sigma = check_grid("sigmas", sigmas)
    check_batch_size(batch_size)
    device = model_device(model)
    generator = torch.Generator().manual_seed(int(seed))
    correct = torch.zeros(len(sigma), dtype=torch.long)
    for start in range(0, x.shape[0], NOISE_BLOCK):
        block_x, block_y = x[start:start + NOISE_BLOCK], y[start:start + NOISE_BLOCK]
        unit = torch.randn(block_x.shape, generator=generator, dtype=block_x.dtype)  # [b, ...] on CPU
        for i in range(0, block_x.shape[0], batch_size):
            xb, yb = block_x[i:i + batch_size].to(device), block_y[i:i + batch_size].to(device)
            eb = unit[i:i + batch_size].to(device)
            for k, s in enumerate(sigma):
                noisy = (xb + s * eb).clamp_(0.0, 1.0) if s > 0 else xb
                correct[k] += int((model(noisy).argmax(dim=1) == yb).sum())
    return (correct.double() / x.shape[0]).tolist()


def noise_rows(model: nn.Module, x: Tensor, y: Tensor, config) -> list[EvalRow]:
    """Catalogue face: accuracy under Gaussian noise at every σ of config.noise_sigma."""
    curve = noise_curve(model, x, y, config.noise_sigma, config.noise_seed, config.batch_size)
    return [EvalRow("noise_acc", s, v) for s, v in zip(config.noise_sigma, curve, strict=True)]
