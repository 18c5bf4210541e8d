"""What PGD and APGD share: losses, the projection, the random start, and the attack loop itself.

Both attacks answer one question per sample: is there an x' in the ε-ball around x (intersected with the
pixel box [0, 1]) that the model misclassifies? Every iterate lies in that set, so a sample counts as fooled
as soon as *any* iterate (the start included) is misclassified, and it then leaves the batch: the remaining
samples' trajectories do not depend on it (every quantity is per sample). Restarts re-attack only the samples
not fooled yet.

`run_attack` is that loop, written once. An attack is a *rule* (backend.evaluate.pgd.PGDRule,
backend.evaluate.apgd.APGDRule) that says how to take a step from the current iterates and what to remember
from the loss at the new ones; the loop does the starts, the gradients, the bookkeeping of fooled samples and
the restarts.

Starts: uniform in the L∞ box or the L2 ball (clipped), the clean input (`random=False`), or a given point
(`x_init`, projected onto the ball; rows of NaN start at random): a *warm start*, e.g. the attack's own result
at a neighbouring ε (backend.evaluate.strong). A warm start replaces the random start of the first restart
only (the random numbers are drawn all the same, so other samples' starts do not depend on it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORMS = ("linf", "l2")
LOSSES = ("ce", "dlr")


def check_attack_args(eps: float, norm: str, steps: int, restarts: int, loss: str = "ce") -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not (eps >= 0) or math.isinf(eps):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be a positive integer, got {restarts}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


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
    """The steepest-ascent direction of unit size: sign(∇) for L∞, ∇/‖∇‖₂ for L2."""
    if norm == "linf":
        return grad.sign()
    return grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)


def ascent_step(x: Tensor, grad: Tensor, size: float | Tensor, x0: Tensor, eps: float, norm: str) -> Tensor:
    """Π(x + size · s(∇)): the step both attacks take (APGD's before its momentum)."""
    return project(x + size * step_direction(grad, norm), x0, eps, norm)


class Rule(Protocol):
    """One attack's step rule over the n samples of a restart; rows are indexed by `a` (the active samples)."""

    def start(self, xa: Tensor, f: Tensor, grad: Tensor) -> None:
        """Called once per restart with the start points [n, D], their loss [n] and gradient [n, D]."""

    def step(self, i: int, a: Tensor, xa: Tensor, xs: Tensor, grad: Tensor) -> Tensor:
        """The next iterates of rows a (xa[a] the current ones, xs[a] the clean inputs, grad theirs)."""

    def observe(self, i: int, a: Tensor, xa: Tensor, f: Tensor, grad: Tensor, keep: Tensor) -> Tensor:
        """After step i, the loss and gradient at the new iterates xa[a]; `keep` marks those still correctly
        classified. May move rows back (in xa); returns the gradient to step from next."""


def run_attack(model: nn.Module, x: Tensor, y: Tensor, eps: float, make_rule: Callable[[int, Tensor], Rule], *,
               norm: str, steps: int, restarts: int, loss: str, random: bool = True,
               x_init: Tensor | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(adversarial inputs shaped like x, fooled [B] bool) for pixels x in [0, 1] and labels y.

    make_rule(n, xs) builds the rule for a restart over n samples with clean inputs xs [n, D]. For a fooled
    sample the returned input is the first misclassified iterate; otherwise the final iterate of the last
    restart (x itself at eps 0). Already misclassified samples count as fooled at x.
    """
    check_attack_args(eps, norm, steps, restarts, loss)
    shape = tuple(x.shape[1:])
    if x.shape[0] == 0:
        return x.detach().clone(), torch.zeros(0, dtype=torch.bool, device=x.device)
    x0 = x.detach().reshape(x.shape[0], -1)
    out = x0.clone()
    with torch.no_grad():
        fooled = model(x).argmax(dim=1) != y
    if eps == 0:
        return out.reshape(x.shape), fooled
    warm = None if x_init is None else x_init.detach().reshape(x.shape[0], -1).to(x0)
    for r in range(restarts):
        (idx,) = (~fooled).nonzero(as_tuple=True)  # samples this restart attacks
        if idx.numel() == 0:
            break
        xs, ys = x0[idx], y[idx]
        xa = random_start(xs, eps, norm, generator) if random else xs.clone()
        if r == 0 and warm is not None:
            given = ~warm[idx].isnan().any(dim=1)  # NaN rows: no warm start for that sample
            xa[given] = project(warm[idx][given], xs[given], eps, norm)
        rule = make_rule(idx.numel(), xs)
        logits, f, grad = loss_and_grad(model, xa, ys, loss, shape)
        rule.start(xa, f, grad)
        active = torch.arange(idx.numel(), device=x.device)  # rows of xs still correctly classified
        keep = logits.argmax(dim=1) == ys
        for i in range(steps + 1):
            gone = active[~keep]  # fooled at the current iterate: record and drop
            fooled[idx[gone]] = True
            out[idx[gone]] = xa[gone]
            active, grad = active[keep], grad[keep]
            if active.numel() == 0:
                break
            if i == steps:
                out[idx[active]] = xa[active]
                break
            x_new = rule.step(i, active, xa, xs, grad)
            xa[active] = x_new
            logits, f, grad = loss_and_grad(model, x_new, ys[active], loss, shape)
            keep = logits.argmax(dim=1) == ys[active]
            grad = rule.observe(i, active, xa, f, grad, keep)
    return out.reshape(x.shape), fooled
