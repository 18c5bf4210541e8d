"""Strong-attack robust-accuracy curves: the worst case per sample over an ensemble of attacks, over an ε grid.

Robust accuracy(ε) = share of *all* samples that no attack of the ensemble fools within ε, so ε = 0 gives
clean accuracy and clean mistakes count as fooled everywhere. An adversarial found at ε_k lies in every larger
ball, so a sample fooled at ε_k counts as fooled at every ε ≥ ε_k without being attacked there. What is left to
find per sample is the smallest grid ε at which the ensemble fools it; two ways to search the grid:

- "bisect" (default): the largest ε first (a sample no attack fools there is counted robust on the whole grid
  and never attacked again), then bisection between the largest ε known robust and the smallest known fooled.
  A sample costs about log₂(grid) attack runs instead of one per ε below its answer, and the runs that fail
  (the expensive ones: every step is taken) are the fewest. Every attack is *warm-started* from its own last
  point for that sample (the adversarial found at a larger ε, or the final iterate at a smaller one), projected
  onto the new ball, instead of a fresh random start.
- "walk": the grid upwards, every ε from a random start, each sample until it is fooled (the reference).

Either way every sample counted fooled at ε has a real adversarial within ε, so the curve is an *upper bound*
on the true robust accuracy (an attack can miss adversarials), the counterpart of backend.evaluate.certify's
lower bound. The two searches can differ only where an attack fails at a larger ε but succeeds at a smaller
one; tests/unit/test_strong_agreement.py holds both within 1 point of torchattacks run at every ε.

Within one ε the attacks run in turn, each on the samples the earlier ones did not fool. Samples are batched;
each attack drops a sample as soon as it is fooled.

Per sample the search also records the size of the adversarial found at its smallest fooled ε (L∞ or L2
distance, ≤ that ε): an upper bound on the sample's minimal adversarial perturbation; `median_perturbation`
gives the median over clean-correct samples (+inf for samples never fooled on the grid), the strong-attack
counterpart of DeepFool's median.

Ensembles by name: "pgd" (PGD, CE loss), "apgd" (APGD-CE then APGD-DLR, the white-box core of AutoAttack),
"apgd_ce", "apgd_dlr".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor, nn

from backend.evaluate.apgd import apgd
from backend.evaluate.inputs import check_batch_size, check_grid, check_inputs, model_device
from backend.evaluate.pgd import NORMS, pgd

Attack = Callable[..., tuple[Tensor, Tensor]]  # (model, x, y, eps, generator=..., x_init=...) -> (x_adv, fooled)
ENSEMBLES = ("pgd", "apgd", "apgd_ce", "apgd_dlr")
SEARCHES = ("bisect", "walk")


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


class Search(NamedTuple):
    """Per sample [N] float64: `first` = the smallest grid ε at which some attack fools it (0 for clean
    mistakes, +inf if none on the grid); `size` = the L∞/L2 size of the adversarial found there (0 for clean
    mistakes, +inf if none)."""

    first: Tensor
    size: Tensor


def _distance(adv: Tensor, x: Tensor, norm: str) -> Tensor:
    delta = (adv - x).flatten(1).double()
    return delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)


def search_grid(model: nn.Module, x: Tensor, y: Tensor, eps_grid, attacks: Sequence[Attack], *, norm: str = "linf",
                batch_size: int = 1000, seed: int = 0, search: str = "bisect") -> Search:
    """The smallest fooled grid ε of every sample, and the size of the adversarial found there (module doc)."""
    x = check_inputs(model, x, y)
    eps = [e for e in sorted(set(check_grid("eps_grid", eps_grid))) if e > 0]
    check_batch_size(batch_size)
    if not attacks:
        raise ValueError("the attack ensemble is empty")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    device = model_device(model)
    generator = torch.Generator().manual_seed(int(seed))
    n = x.shape[0]
    first = torch.full((n,), math.inf, dtype=torch.float64)
    size = torch.full((n,), math.inf, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, n, batch_size):
            pred = model(x[i:i + batch_size].to(device)).argmax(dim=1).cpu()
            wrong = pred != y[i:i + batch_size].cpu()
            first[i:i + batch_size][wrong] = 0.0
            size[i:i + batch_size][wrong] = 0.0
    if not eps:
        return Search(first, size)
    k_top = len(eps)
    # grid indices: lo = largest known robust (−1: only ε = 0), hi = smallest known fooled (k_top: none yet)
    lo = torch.full((n,), -1, dtype=torch.long)
    hi = torch.where(first == 0, 0, k_top)
    # each attack's last point per sample (NaN: none yet, start at random)
    warm = None if search == "walk" else [torch.full_like(x, math.nan) for _ in attacks]

    def attack_at(k: int, members: Tensor) -> Tensor:
        """Run the ensemble at eps[k] on `members` (sample indices); the subset of them it fooled."""
        hit = torch.zeros(n, dtype=torch.bool)
        for j, attack in enumerate(attacks):
            left = members[~hit[members]]
            for chunk in left.split(batch_size):
                xb, yb = x[chunk].to(device), y[chunk].to(device)
                init = None if warm is None else warm[j][chunk].to(device)
                adv, fooled = attack(model, xb, yb, eps[k], generator=generator, x_init=init)
                fooled = fooled.cpu()
                if warm is not None:
                    warm[j][chunk] = adv.detach().to(warm[j].device)
                won = chunk[fooled]
                hit[won] = True
                size[won] = _distance(adv[fooled].cpu(), x[won].cpu(), norm)
        return members[hit[members]]

    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        if search == "walk":
            probe = lo + 1
        else:
            probe = torch.where(hi == k_top, k_top - 1, torch.div(lo + hi, 2, rounding_mode="floor"))
        for k in sorted(set(probe[open_].tolist())):
            (members,) = (open_ & (probe == k)).nonzero(as_tuple=True)
            won = attack_at(k, members)
            hit = torch.zeros(n, dtype=torch.bool)
            hit[won] = True
            hi[members[hit[members]]] = k
            lo[members[~hit[members]]] = k
    fooled = hi < k_top
    grid = torch.tensor(eps, dtype=torch.float64)
    first = torch.where(first == 0, first, torch.where(fooled, grid[hi.clamp(max=k_top - 1)], math.inf))
    size = torch.where(first == 0, 0.0, torch.where(fooled, size, math.inf))
    return Search(first, size)


def first_fooled_eps(model: nn.Module, x: Tensor, y: Tensor, eps_grid, attacks: Sequence[Attack], *,
                     batch_size: int = 1000, seed: int = 0, search: str = "bisect", norm: str = "linf") -> Tensor:
    """[N] float64: the smallest grid ε at which some attack fools each sample; 0 for clean mistakes and
    +inf for samples no attack fooled at any grid ε."""
    return search_grid(model, x, y, eps_grid, attacks, norm=norm, batch_size=batch_size, seed=seed,
                       search=search).first


def curve_from_first(first: Tensor, eps_grid) -> list[float]:
    """Robust accuracy at each ε of the grid (any order) from first_fooled_eps's answer."""
    return [float((first > e).double().mean()) for e in check_grid("eps_grid", eps_grid)]


def median_perturbation(result: Search) -> float:
    """Median adversarial size over clean-correct samples (+inf counts for those never fooled); nan if none."""
    from backend.evaluate.deepfool import _median

    return _median(result.size[result.first != 0])


def strong_search(model: nn.Module, x: Tensor, y: Tensor, eps_grid, *, attack: str = "apgd", norm: str = "linf",
                  steps: int = 100, restarts: int = 1, batch_size: int = 1000, seed: int = 0,
                  search: str = "bisect") -> Search:
    """search_grid with the named attack ensemble."""
    attacks = ensemble(attack, norm, steps=steps, restarts=restarts)
    return search_grid(model, x, y, eps_grid, attacks, norm=norm, batch_size=batch_size, seed=seed, search=search)


def strong_curve(model: nn.Module, x: Tensor, y: Tensor, eps_grid, *, attack: str = "apgd", norm: str = "linf",
                 steps: int = 100, restarts: int = 1, batch_size: int = 1000, seed: int = 0,
                 search: str = "bisect") -> list[float]:
    """Robust accuracy at each ε under the named attack ensemble (see the module docstring)."""
    result = strong_search(model, x, y, eps_grid, attack=attack, norm=norm, steps=steps, restarts=restarts,
                           batch_size=batch_size, seed=seed, search=search)
    return curve_from_first(result.first, eps_grid)
