"""Strong-attack robust-accuracy curves: the worst case per sample over an ensemble of attacks, over an ε grid.

Robust accuracy(ε) = share of *all* samples that no attack of the ensemble fools within ε, so ε = 0 gives
clean accuracy and clean mistakes count as fooled everywhere. An adversarial found at ε_k lies in every larger
ball, so the grid is walked in increasing order and a sample fooled at ε_k is counted fooled at every ε ≥ ε_k
without being attacked again; within one ε the attacks run in turn, each on the samples the earlier ones did
not fool. Samples are batched; each attack drops a sample as soon as it is fooled.

The result is an *upper bound* on the true robust accuracy (an attack can miss adversarials), the counterpart
of backend.evaluate.certify's lower bound.

Ensembles by name: "pgd" (PGD, CE loss), "apgd" (APGD-CE then APGD-DLR, the white-box core of AutoAttack),
"apgd_ce", "apgd_dlr".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from backend.evaluate.apgd import apgd
from backend.evaluate.inputs import check_batch_size, check_grid, check_inputs, model_device
from backend.evaluate.pgd import NORMS, pgd

Attack = Callable[..., tuple[Tensor, Tensor]]  # (model, x, y, eps, generator=...) -> (x_adv, fooled)
ENSEMBLES = ("pgd", "apgd", "apgd_ce", "apgd_dlr")


def ensemble(name: str, norm: str, *, steps: int, restarts: int) -> list[Attack]:
    """The attacks of a named ensemble with the given steps and restarts."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if name == "pgd":
        return [partial(pgd, norm=norm, steps=steps, restarts=restarts, loss="ce")]
    losses = {"apgd": ("ce", "dlr"), "apgd_ce": ("ce",), "apgd_dlr": ("dlr",)}.get(name)
    if losses is None:
        raise ValueError(f"unknown attack ensemble {name!r}; choose from {list(ENSEMBLES)}")
    return [partial(apgd, norm=norm, steps=steps, restarts=restarts, loss=loss) for loss in losses]


def first_fooled_eps(model: nn.Module, x: Tensor, y: Tensor, eps_grid, attacks: Sequence[Attack], *,
                     batch_size: int = 1000, seed: int = 0) -> Tensor:
    """[N] float64: the smallest grid ε at which some attack fools each sample; 0 for clean mistakes and
    +inf for samples no attack fooled at any grid ε."""
    x = check_inputs(model, x, y)
    eps = sorted(set(check_grid("eps_grid", eps_grid)))
    check_batch_size(batch_size)
    if not attacks:
        raise ValueError("the attack ensemble is empty")
    device = model_device(model)
    generator = torch.Generator().manual_seed(int(seed))
    first = torch.full((x.shape[0],), math.inf, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            pred = model(x[i:i + batch_size].to(device)).argmax(dim=1).cpu()
            first[i:i + batch_size][pred != y[i:i + batch_size]] = 0.0
    for e in eps:
        if e == 0:
            continue
        for attack in attacks:
            (left,) = torch.isinf(first).nonzero(as_tuple=True)
            if left.numel() == 0:
                break
            for chunk in left.split(batch_size):
                xb, yb = x[chunk].to(device), y[chunk].to(device)
                _, fooled = attack(model, xb, yb, e, generator=generator)
                first[chunk[fooled.cpu()]] = e
    return first


def curve_from_first(first: Tensor, eps_grid) -> list[float]:
    """Robust accuracy at each ε of the grid (any order) from first_fooled_eps's answer."""
    return [float((first > e).double().mean()) for e in check_grid("eps_grid", eps_grid)]


def strong_curve(model: nn.Module, x: Tensor, y: Tensor, eps_grid, *, attack: str = "apgd", norm: str = "linf",
                 steps: int = 100, restarts: int = 1, batch_size: int = 1000, seed: int = 0) -> list[float]:
    """Robust accuracy at each ε under the named attack ensemble (see the module docstring)."""
    attacks = ensemble(attack, norm, steps=steps, restarts=restarts)
    first = first_fooled_eps(model, x, y, eps_grid, attacks, batch_size=batch_size, seed=seed)
    return curve_from_first(first, eps_grid)
