"""PGD (Madry et al. 2018) with random start and restarts, L∞ and L2, batched over samples.

One attack call answers one question per sample: is there an x' in the ε-ball around x (intersected with
the pixel box [0, 1]) that the model misclassifies? Every iterate lies in that set, so a sample counts as
fooled as soon as *any* iterate (the random start included) is misclassified, and it then leaves the batch:
the remaining samples' trajectories do not depend on it (every quantity is per sample). foolbox's PGD
reports the final iterate instead, which can only be fooled less often.

Step: x ← Π(x + α · sign(∇)) (L∞) or x ← Π(x + α · ∇/‖∇‖₂) (L2), ∇ the gradient of the per-sample loss
(cross-entropy, or DLR), α = rel_stepsize · ε, Π the projection onto the ball then the clip to [0, 1]
(clipping moves every coordinate towards x, so the result stays in the ball). The random start is uniform in
the L∞ box, or uniform in the L2 ball, then clipped. Each restart re-attacks only the samples not fooled yet.

Shared helpers (losses, projection, the loss-and-gradient call) are used by APGD too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORMS = ("linf", "l2")
LOSSES = ("ce", "dlr")


def check_attack_args(eps: float, norm: str, steps: int, restarts: int) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not (eps >= 0) or math.isinf(eps):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be a positive integer, got {restarts}")


def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Difference of logits ratio (Croce & Hein 2020), per sample: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3).

    Scale-invariant in the logits (shifting or scaling them does not change it); needs ≥ 3 classes.
    """
    if logits.shape[1] < 3:
        raise ValueError(f"the DLR loss needs at least 3 classes, got {logits.shape[1]}")
    top = logits.sort(dim=1, descending=True).values  # [B, K]
    z_y = logits.gather(1, y[:, None])[:, 0]
    other = torch.where(top[:, 0] == z_y, top[:, 1], top[:, 0])  # the best other class
    return -(z_y - other) / (top[:, 0] - top[:, 2] + 1e-12)


def per_sample_loss(logits: Tensor, y: Tensor, loss: str) -> Tensor:
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if loss == "dlr":
        return dlr_loss(logits, y)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def loss_and_grad(model: nn.Module, x: Tensor, y: Tensor, loss: str, shape: tuple[int, ...]
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """(logits [B, K], per-sample loss [B], its gradient w.r.t. the flat pixels x [B, D])."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x.reshape(x.shape[0], *shape))
        values = per_sample_loss(logits, y, loss)
        (grad,) = torch.autograd.grad(values.sum(), x)  # samples are independent: sum gives per-sample grads
    return logits.detach(), values.detach(), grad


def project(x_adv: Tensor, x0: Tensor, eps: float | Tensor, norm: str) -> Tensor:
    """Onto {‖x' − x0‖ ≤ eps} ∩ [0, 1]^D, rows of flat [B, D] tensors."""
    delta = x_adv - x0
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        norms = delta.norm(dim=1, keepdim=True)
        delta = delta * (eps / norms.clamp_min(1e-12)).clamp(max=1.0)
    return (x0 + delta).clamp_(0.0, 1.0)


def random_start(x0: Tensor, eps: float, norm: str, generator: torch.Generator | None) -> Tensor:
    """A uniform point of the ε-ball around each row of x0 [B, D], clipped to [0, 1]."""
    if norm == "linf":
        u = torch.rand(x0.shape, generator=generator, dtype=x0.dtype, device="cpu").to(x0.device)
        return (x0 + eps * (2 * u - 1)).clamp_(0.0, 1.0)
    d = x0.shape[1]
    g = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device="cpu")
    r = torch.rand(x0.shape[0], 1, generator=generator, dtype=x0.dtype, device="cpu") ** (1.0 / d)
    delta = (eps * r * g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)).to(x0.device)
    return (x0 + delta).clamp_(0.0, 1.0)


def step_direction(grad: Tensor, norm: str) -> Tensor:
    if norm == "linf":
        return grad.sign()
    return grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)


def pgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, norm: str = "linf", steps: int = 40,
        rel_stepsize: float | None = None, restarts: int = 1, loss: str = "ce", random: bool = True,
        generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(adversarial inputs shaped like x, fooled [B] bool) for pixels x in [0, 1] and labels y.

    rel_stepsize None: 2.5 / steps (Madry et al.'s choice: the steps can cross the ball 2.5 times).
    For a fooled sample the returned input is the first misclassified iterate; otherwise the final iterate
    of the last restart (x itself at eps 0). Already misclassified samples count as fooled at x.
    """
    check_attack_args(eps, norm, steps, restarts)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    alpha = (2.5 / steps if rel_stepsize is None else float(rel_stepsize)) * eps
    shape = tuple(x.shape[1:])
    if x.shape[0] == 0:
        return x.detach().clone(), torch.zeros(0, dtype=torch.bool, device=x.device)
    x0 = x.detach().reshape(x.shape[0], -1)
    out = x0.clone()
    with torch.no_grad():
        fooled = model(x).argmax(dim=1) != y
    if eps == 0:
        return out.reshape(x.shape), fooled
    for _ in range(restarts):
        (idx,) = (~fooled).nonzero(as_tuple=True)  # samples this restart attacks
        if idx.numel() == 0:
            break
        xs, ys = x0[idx], y[idx]
        xa = random_start(xs, eps, norm, generator) if random else xs.clone()
        active = torch.arange(idx.numel(), device=x.device)  # rows of xs still correctly classified
        for step in range(steps + 1):
            logits, _, grad = loss_and_grad(model, xa[active], ys[active], loss, shape)
            hit = logits.argmax(dim=1) != ys[active]
            fooled[idx[active[hit]]] = True
            out[idx[active[hit]]] = xa[active[hit]]
            active, grad = active[~hit], grad[~hit]
            if active.numel() == 0:
                break
            if step == steps:
                out[idx[active]] = xa[active]
                break
            xa[active] = project(xa[active] + alpha * step_direction(grad, norm), xs[active], eps, norm)
    return out.reshape(x.shape), fooled
