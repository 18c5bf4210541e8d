"""Our strong attacks agree with the peers at equal settings on the same trained models and samples:
APGD-CE with torchattacks' APGD (within 1 point at every eps) and PGD with foolbox 3's PGD (within noise:
both start at a random point of the ball, with different random numbers). "walk" (a random start at every
eps, as the peers) is held to that both ways; the default "bisect" search (largest eps first, warm starts) must
be at least as strong as the peer up to the same tolerance, and within twice it of the peer."""

from __future__ import annotations

import pytest
import torch

from backend.evaluate.strong import strong_curve
from tests.unit.test_foolbox_agreement import setup  # noqa: F401  (synthetic + Fashion-MNIST models, 300 samples)

LINF = [0.0, 0.01, 0.02, 0.05]
L2 = [0.0, 0.1, 0.3, 0.6]
APGD_TOLERANCE = 0.01
PGD_TOLERANCE = 0.02  # random starts differ: a few of 300 samples near the boundary may go either way


def _worst_gap(ours, theirs):
    return max(abs(a - b) for a, b in zip(ours, theirs, strict=True))


def _no_weaker(ours, theirs, tolerance, what):
    """An upper bound at least as tight as the peer's (up to noise), and not far from it either way."""
    assert max(a - b for a, b in zip(ours, theirs, strict=True)) <= tolerance, what
    assert _worst_gap(ours, theirs) <= 2 * tolerance, what


@pytest.mark.parametrize(("p", "grid"), [("linf", LINF), ("l2", L2)])
def test_apgd_agrees_with_torchattacks(setup, p, grid):  # noqa: F811
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = setup
    walk = strong_curve(model, x, y, grid, attack="apgd_ce", norm=p, steps=50, search="walk")
    ours = strong_curve(model, x, y, grid, attack="apgd_ce", norm=p, steps=50)
    theirs = [ours[0]]
    for eps in grid[1:]:
        attack = torchattacks.APGD(model, norm="Linf" if p == "linf" else "L2", eps=eps, steps=50, n_restarts=1,
                                   loss="ce", seed=0)
        theirs.append(float((model(attack(x, y)).argmax(1) == y).double().mean()))
    assert _worst_gap(walk, theirs) <= APGD_TOLERANCE, f"APGD {p}: ours (walk) {walk} vs torchattacks {theirs}"
    _no_weaker(ours, theirs, APGD_TOLERANCE, f"APGD {p}: ours (bisect) {ours} vs torchattacks {theirs}")
    assert ours[-1] < ours[0]


@pytest.mark.parametrize(("p", "grid"), [("linf", LINF), ("l2", L2)])
def test_pgd_agrees_with_foolbox(setup, p, grid):  # noqa: F811
    fb = pytest.importorskip("foolbox")
    model, x, y = setup
    walk = strong_curve(model, x, y, grid, attack="pgd", norm=p, steps=40, search="walk")
    ours = strong_curve(model, x, y, grid, attack="pgd", norm=p, steps=40)
    attack = (fb.attacks.LinfPGD if p == "linf" else fb.attacks.L2PGD)(steps=40, rel_stepsize=2.5 / 40)
    torch.manual_seed(0)  # foolbox draws its random start from the global generator
    _, _, success = attack(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=grid)
    theirs = (1.0 - success.double().mean(dim=1)).tolist()
    assert _worst_gap(walk, theirs) <= PGD_TOLERANCE, f"PGD {p}: ours (walk) {walk} vs foolbox {theirs}"
    _no_weaker(ours, theirs, PGD_TOLERANCE, f"PGD {p}: ours (bisect) {ours} vs foolbox {theirs}")
