"""FGSM robust-accuracy curve (L∞, untargeted): one gradient per sample, then one forward per eps.

x' = clip(x + eps · sign(∇ₓ CE(f(x), y)), 0, 1). The gradient does not depend on eps, so the curve costs
one forward+backward plus one forward per eps instead of re-running the attack for every eps.

For our MLP the per-eps forward is cheaper still. Pixel j moves linearly with eps until it hits a bound
at t_j (its distance to 0 or 1 along the sign), so x'(eps) = x + eps·s − s ⊙ (eps − t)₊ and the first
(widest) layer's pre-activation is z₁(eps) = z₁(x) + eps·(A s) − A (s ⊙ (eps − t)₊), A = W₁·diag(1/std).
A s is one matmul for all eps and the correction touches only the few pixels within eps of a bound
(a sparse matmul), so on a CPU each eps costs roughly the layers after the first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.evaluate.inputs import check_batch_size, check_grid, check_inputs, model_device
from backend.metrics import EvalRow
from backend.models import MLP


def fgsm_direction(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(clean logits [B, K], sign of the input gradient of the CE loss, shaped like x)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y, reduction="sum")  # sum: per-sample grads, same sign as mean
        (grad,) = torch.autograd.grad(loss, x)
    return logits.detach(), grad.sign()


def _generic_curve_batch(model: nn.Module, x: Tensor, y: Tensor, eps: list[float]) -> list[int]:
    clean_logits, direction = fgsm_direction(model, x, y)
    counts = []
    with torch.no_grad():
        for e in eps:
            logits = model((x + e * direction).clamp_(0.0, 1.0)) if e > 0 else clean_logits
            counts.append(int((logits.argmax(dim=1) == y).sum()))
    return counts


def _mlp_head(model: MLP, z1: Tensor) -> Tensor:
    """Logits from the first layer's pre-activation z₁ [B, H₁]."""
    h = z1
    for layer in model.layers[1:]:
        h = layer(torch.relu(h))
    return h


def _mlp_curve_batch(model: MLP, x: Tensor, y: Tensor, eps: list[float]) -> list[int]:
    x = x.reshape(x.shape[0], -1).detach().requires_grad_(True)  # [B, D]
    with torch.enable_grad():
        z1 = model.layers[0](model.normalize(x))  # [B, H₁]
        logits = _mlp_head(model, z1)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
    x, z1, logits, s = x.detach(), z1.detach(), logits.detach(), grad.sign()  # s [B, D]
    with torch.no_grad():
        hw = x.shape[1] // model.std.numel()  # pixels per channel
        a_t = (model.layers[0].weight / model.std.repeat_interleave(hw)[None, :]).t().contiguous()  # [D, H₁]
        to_bound = torch.where(s > 0, 1.0 - x, x).masked_fill_(s == 0, float("inf"))  # t [B, D]
        s = s.masked_fill(to_bound <= 0, 0.0)  # pixels already at the bound they are pushed to never move
        a_s = s @ a_t  # [B, H₁]
        rows, cols = ((to_bound > 0) & (to_bound < max(eps))).nonzero(as_tuple=True)  # may hit a bound
        t_near, s_near = to_bound[rows, cols], s[rows, cols]
        counts = []
        for e in eps:
            if e > 0:
                excess = (e - t_near).clamp_min_(0.0) * s_near  # [nnz]
                hit = excess != 0
                corr = torch.sparse_coo_tensor(torch.stack([rows[hit], cols[hit]]), excess[hit], x.shape,
                                               is_coalesced=True, check_invariants=False)
                logits = _mlp_head(model, z1 + e * a_s - torch.sparse.mm(corr, a_t))
            counts.append(int((logits.argmax(dim=1) == y).sum()))
    return counts


def fgsm_curve(model: nn.Module, x: Tensor, y: Tensor, eps_grid, batch_size: int = 1000) -> list[float]:
    """Robust accuracy at each eps = share of *all* samples still classified correctly (eps 0 = clean)."""
    x = check_inputs(model, x, y)
    eps = check_grid("eps_grid", eps_grid)
    check_batch_size(batch_size)
    device = model_device(model)
    # The shortcut trades dense work for a sparse matmul: a win on CPUs, not on GPUs.
    curve_batch = _mlp_curve_batch if type(model) is MLP and device.type == "cpu" else _generic_curve_batch
    correct = torch.zeros(len(eps), dtype=torch.long)
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        correct += torch.tensor(curve_batch(model, xb, yb, eps))
    return (correct.double() / x.shape[0]).tolist()


def fgsm_rows(model: nn.Module, x: Tensor, y: Tensor, config) -> list[EvalRow]:
    """Catalogue face: FGSM robust accuracy at every ε of config.fgsm_eps."""
    curve = fgsm_curve(model, x, y, config.fgsm_eps, config.batch_size)
    return [EvalRow("fgsm_acc", e, v) for e, v in zip(config.fgsm_eps, curve, strict=True)]
