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

The loop (starts, restarts, early exit of fooled samples) is backend.evaluate.ascent.run_attack, shared with
PGD; this module is APGD's step rule: PGD's step z (ascent_step) with a per-sample size, momentum, and the
checkpoint schedule.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from backend.evaluate.ascent import ascent_step, check_attack_args, project, run_attack


def checkpoints(steps: int) -> list[int]:
    """Iterations after which step sizes are checked: p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)."""
    first, shrink, floor = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    out, at, interval = [], first, first
    while at <= steps:
        out.append(at)
        interval = max(interval - shrink, floor)
        at += interval
    return out


class APGDRule:
    """APGD's per-sample state over the n samples of one restart."""

    def __init__(self, n: int, xs: Tensor, eps: float, norm: str, checks: set[int], rho: float, momentum: float):
        self.eps, self.norm, self.checks, self.rho, self.momentum = eps, norm, checks, rho, momentum
        self.eta = torch.full((n, 1), 2.0 * eps, dtype=xs.dtype, device=xs.device)
        self.increases = torch.zeros(n, dtype=torch.long, device=xs.device)  # loss increases since last checkpoint
        self.halved_at_check = torch.zeros(n, dtype=torch.bool, device=xs.device)
        self.last_check = 0

    def start(self, xa: Tensor, f: Tensor, grad: Tensor) -> None:
        self.x_prev = xa.clone()
        self.x_best, self.f_best, self.grad_best = xa.clone(), f.clone(), grad.clone()
        self.f_last = f.clone()  # loss at the previous iterate
        self.f_best_at_check = f.clone()

    def step(self, i: int, a: Tensor, xa: Tensor, xs: Tensor, grad: Tensor) -> Tensor:
        xk, xs_a = xa[a], xs[a]
        z = ascent_step(xk, grad, self.eta[a], xs_a, self.eps, self.norm)
        alpha = 1.0 if i == 0 else self.momentum
        x_new = project(xk + alpha * (z - xk) + (1 - alpha) * (xk - self.x_prev[a]), xs_a, self.eps, self.norm)
        self.x_prev[a] = xk
        return x_new

    def observe(self, i: int, a: Tensor, xa: Tensor, f: Tensor, grad: Tensor, keep: Tensor) -> Tensor:
        self.increases[a] += (f > self.f_last[a]).long()
        self.f_last[a] = f
        better = f > self.f_best[a]
        b = a[better]
        self.x_best[b], self.f_best[b], self.grad_best[b] = xa[b], f[better], grad[better]
        if i + 1 not in self.checks:
            return grad
        osc = self.increases[a] < self.rho * (i + 1 - self.last_check)
        stalled = ~self.halved_at_check[a] & (self.f_best_at_check[a] >= self.f_best[a])
        reduce = (osc | stalled) & keep  # a fooled sample leaves as it is
        self.halved_at_check[a] = reduce
        self.f_best_at_check[a] = self.f_best[a]
        self.increases[a] = 0
        self.last_check = i + 1
        r = a[reduce]
        self.eta[r] /= 2.0
        xa[r], self.x_prev[r], self.f_last[r] = self.x_best[r], self.x_best[r], self.f_best[r]
        return torch.where(reduce[:, None], self.grad_best[a], grad)


def apgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, norm: str = "linf", steps: int = 100,
         restarts: int = 1, loss: str = "ce", rho: float = 0.75, momentum: float = 0.75,
         x_init: Tensor | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(adversarial inputs shaped like x, fooled [B] bool); same conventions as backend.evaluate.pgd.pgd."""
    check_attack_args(eps, norm, steps, restarts, loss)
    checks = set(checkpoints(steps))
    return run_attack(model, x, y, eps, lambda n, xs: APGDRule(n, xs, eps, norm, checks, rho, momentum),
                      norm=norm, steps=steps, restarts=restarts, loss=loss, x_init=x_init, generator=generator)
