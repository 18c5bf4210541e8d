"""PGD (Madry et al. 2018) with random start and restarts, L∞ and L2, batched over samples.

Step: x ← Π(x + α · s(∇)), s = sign (L∞) or ∇/‖∇‖₂ (L2), ∇ the gradient of the per-sample loss
(cross-entropy, or DLR), α = rel_stepsize · ε, Π the projection onto the ball then the clip to [0, 1]
(clipping moves every coordinate towards x, so the result stays in the ball). The random start is uniform in
the L∞ box, or uniform in the L2 ball, then clipped.

The loop (starts, restarts, early exit of fooled samples) is backend.evaluate.ascent.run_attack, shared with
APGD; this module is PGD's step rule. foolbox's PGD reports the final iterate instead of the first fooled
one, which can only be fooled less often.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from backend.evaluate.ascent import (  # noqa: F401  (re-exported: the attacks' shared helpers)
    LOSSES,
    NORMS,
    ascent_step,
    check_attack_args,
    dlr_loss,
    loss_and_grad,
    per_sample_loss,
    project,
    random_start,
    run_attack,
    step_direction,
)


class PGDRule:
    """x ← Π(x + α · s(∇)) with a fixed step α."""

    def __init__(self, alpha: float, eps: float, norm: str):
        self.alpha, self.eps, self.norm = alpha, eps, norm

    def start(self, xa: Tensor, f: Tensor, grad: Tensor) -> None:
        pass

    def step(self, i: int, a: Tensor, xa: Tensor, xs: Tensor, grad: Tensor) -> Tensor:
        return ascent_step(xa[a], grad, self.alpha, xs[a], self.eps, self.norm)

    def observe(self, i: int, a: Tensor, xa: Tensor, f: Tensor, grad: Tensor, keep: Tensor) -> Tensor:
        return grad


def pgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, norm: str = "linf", steps: int = 40,
        rel_stepsize: float | None = None, restarts: int = 1, loss: str = "ce", random: bool = True,
        x_init: Tensor | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(adversarial inputs shaped like x, fooled [B] bool) for pixels x in [0, 1] and labels y.

    rel_stepsize None: 2.5 / steps (Madry et al.'s choice: the steps can cross the ball 2.5 times).
    x_init: a warm start for the first restart (projected onto the ball) instead of the random start.
    For a fooled sample the returned input is the first misclassified iterate; otherwise the final iterate
    of the last restart (x itself at eps 0). Already misclassified samples count as fooled at x.
    """
    check_attack_args(eps, norm, steps, restarts, loss)
    alpha = (2.5 / steps if rel_stepsize is None else float(rel_stepsize)) * eps
    return run_attack(model, x, y, eps, lambda n, xs: PGDRule(alpha, eps, norm), norm=norm, steps=steps,
                      restarts=restarts, loss=loss, random=random, x_init=x_init, generator=generator)
