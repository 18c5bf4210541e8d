"""APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"), L∞ and L2, cross-entropy or DLR loss, batched over samples. Our implementation of
the paper's Algorithm 1:

- start x⁰ (uniform in the ball, clipped), step size η = 2ε per sample;
- x¹ = Π(x⁰ + η·s(∇f(x⁰))), then z = Π(xᵏ + η·s(∇f(xᵏ))), xᵏ⁺¹ = Π(xᵏ + α(z − xᵏ) + (1 − α)(xᵏ − xᵏ⁻¹)),
  α = 0.75 (momentum), s = sign (L∞) or ∇/‖∇‖₂ (L2), Π = projection onto the ball, then [0, 1];
- checkpoints w₀ = 0, w₁ = ⌈0.22·N⌉ and then intervals shrinking by 0.03·N down to 0.06·N; at a checkpoint a
  sample halves its step and goes back to its best point when (1) the loss went up in fewer than ρ = 0.75
  of the steps since the last checkpoint, or (2) its step was not halved at the last checkpoint and its best
  loss has not improved since.

A sample is fooled as soon as any iterate is misclassified and then leaves the batch (see backend.evaluate.pgd:
every quantity is per sample, so the others' trajectories do not change). Restarts re-attack only the samples
not fooled yet, from a fresh random start.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from backend.evaluate.pgd import (
    LOSSES,
    check_attack_args,
    loss_and_grad,
    project,
    random_start,
    step_direction,
)


def checkpoints(steps: int) -> list[int]:
    """Iterations after which step sizes are checked: p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)."""
    first, shrink, floor = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    out, at, interval = [], first, first
    while at <= steps:
        out.append(at)
        interval = max(interval - shrink, floor)
        at += interval
    return out


def apgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, norm: str = "linf", steps: int = 100,
         restarts: int = 1, loss: str = "ce", rho: float = 0.75, momentum: float = 0.75,
         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(adversarial inputs shaped like x, fooled [B] bool); same conventions as backend.evaluate.pgd.pgd."""
    check_attack_args(eps, norm, steps, restarts)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    shape = tuple(x.shape[1:])
    if x.shape[0] == 0:
        return x.detach().clone(), torch.zeros(0, dtype=torch.bool, device=x.device)
    x0 = x.detach().reshape(x.shape[0], -1)
    out = x0.clone()
    with torch.no_grad():
        fooled = model(x).argmax(dim=1) != y
    if eps == 0:
        return out.reshape(x.shape), fooled
    checks = set(checkpoints(steps))
    for _ in range(restarts):
        (idx,) = (~fooled).nonzero(as_tuple=True)
        if idx.numel() == 0:
            break
        n = idx.numel()
        xs, ys = x0[idx], y[idx]
        xa = random_start(xs, eps, norm, generator)
        logits, f, grad = loss_and_grad(model, xa, ys, loss, shape)
        x_prev = xa.clone()
        x_best, f_best, grad_best = xa.clone(), f.clone(), grad.clone()
        f_last = f.clone()  # loss at the previous iterate
        eta = torch.full((n, 1), 2.0 * eps, dtype=x0.dtype, device=x0.device)
        increases = torch.zeros(n, dtype=torch.long, device=x0.device)  # loss increases since last checkpoint
        f_best_at_check = f.clone()
        halved_at_check = torch.zeros(n, dtype=torch.bool, device=x0.device)
        last_check = 0
        active = torch.arange(n, device=x0.device)
        keep = logits.argmax(dim=1) == ys
        for i in range(steps + 1):
            # record the samples fooled at the current iterate and drop them
            gone = active[~keep]
            fooled[idx[gone]] = True
            out[idx[gone]] = xa[gone]
            active, grad = active[keep], grad[keep]
            if active.numel() == 0:
                break
            if i == steps:
                out[idx[active]] = xa[active]
                break
            a = active
            xk, xs_a = xa[a], xs[a]
            z = project(xk + eta[a] * step_direction(grad, norm), xs_a, eps, norm)
            alpha = 1.0 if i == 0 else momentum
            x_new = project(xk + alpha * (z - xk) + (1 - alpha) * (xk - x_prev[a]), xs_a, eps, norm)
            x_prev[a], xa[a] = xk, x_new
            logits, f, grad = loss_and_grad(model, x_new, ys[a], loss, shape)
            keep = logits.argmax(dim=1) == ys[a]
            increases[a] += (f > f_last[a]).long()
            f_last[a] = f
            better = f > f_best[a]
            b = a[better]
            x_best[b], f_best[b], grad_best[b] = x_new[better], f[better], grad[better]
            if i + 1 in checks:
                osc = increases[a] < rho * (i + 1 - last_check)
                stalled = ~halved_at_check[a] & (f_best_at_check[a] >= f_best[a])
                reduce = (osc | stalled) & keep  # a fooled sample leaves as it is
                halved_at_check[a] = reduce
                f_best_at_check[a] = f_best[a]
                increases[a] = 0
                last_check = i + 1
                r = a[reduce]
                eta[r] /= 2.0
                xa[r], x_prev[r], f_last[r] = x_best[r], x_best[r], f_best[r]
                grad = torch.where(reduce[:, None], grad_best[a], grad)
    return out.reshape(x.shape), fooled
