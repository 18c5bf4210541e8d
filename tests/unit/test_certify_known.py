"""Bound propagation against answers worked out by hand and by exhaustive enumeration.

The hand-made net has one pixel x, normalisation mean 0.2 / std 0.5 (so folding matters), two hidden ReLUs
h₁ = relu(x − 0.3), h₂ = relu(0.7 − x) and logits z₀ = h₁ + h₂, z₁ = 0.2, z₂ = −1. Its exact output range over
an interval of x is elementary, and so are IBP's and CROWN's answers:

- x ∈ [0.4, 0.6] (both neurons active): z₀ = 0.4 exactly. CROWN is exact, [0.4, 0.4]; IBP adds the two
  intervals [0.1, 0.3] and loses the dependency: [0.2, 0.6].
- x ∈ [0.2, 0.6] (h₁ unstable, pre-activation in [−0.1, 0.3]): z₀ = 0.7 − x below 0.3 and 0.4 above, so the
  exact range is [0.4, 0.5]. CROWN's relaxation h₁ ≤ 0.75·(x − 0.2), h₁ ≥ x − 0.3 (slope 1 since u ≥ −l)
  gives exactly [0.4, 0.5]; IBP gives [0 + 0.1, 0.3 + 0.5] = [0.1, 0.8].
- x₀ = 0.05, ε = 0.1: the box is clipped to [0, 0.15]; z₀ = 0.7 − x, range [0.55, 0.7] (not 0.75).

Margins z₀ − z₁ at x₀ = 0.4, ε = 0.2: CROWN ≥ 0.2 > 0 (certified), IBP ≥ −0.1 (not).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from backend.evaluate.certify import certified_linf_curve, logit_bounds, margin_lower_bounds
from backend.models import MLP, MLPConfig


@pytest.fixture(scope="module")
def hand_net() -> MLP:
    config = MLPConfig(in_shape=(1, 1, 1), widths=(2,), num_classes=3, mean=(0.2,), std=(0.5,))
    model = MLP(config).eval()
    with torch.no_grad():  # u = (x − 0.2) / 0.5, so x = 0.5·u + 0.2
        model.layers[0].weight.copy_(torch.tensor([[0.5], [-0.5]]))
        model.layers[0].bias.copy_(torch.tensor([-0.1, 0.5]))  # x − 0.3, 0.7 − x
        model.layers[1].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
        model.layers[1].bias.copy_(torch.tensor([0.0, 0.2, -1.0]))
    return model


def _pixel(v: float) -> torch.Tensor:
    return torch.tensor([[[[v]]]])


@pytest.mark.parametrize(("x0", "eps", "crown", "ibp"), [
    (0.5, 0.1, (0.4, 0.4), (0.2, 0.6)),
    (0.4, 0.2, (0.4, 0.5), (0.1, 0.8)),
    (0.05, 0.1, (0.55, 0.7), (0.55, 0.7)),
])
def test_hand_worked_bounds(hand_net, x0, eps, crown, ibp):
    for method, (lo, hi) in (("crown", crown), ("ibp", ibp)):
        lower, upper = logit_bounds(hand_net, _pixel(x0), eps, method, dtype=torch.float64)
        assert float(lower[0, 0]) == pytest.approx(lo, abs=1e-6), method
        assert float(upper[0, 0]) == pytest.approx(hi, abs=1e-6), method
        assert float(lower[0, 1]) == pytest.approx(0.2, abs=1e-6) and float(upper[0, 2]) == pytest.approx(-1.0)
    dense = torch.linspace(max(x0 - eps, 0.0), min(x0 + eps, 1.0), 10001).reshape(-1, 1, 1, 1)
    with torch.no_grad():
        z0 = hand_net(dense)[:, 0]
    assert float(z0.min()) == pytest.approx(crown[0], abs=1e-6) and float(z0.max()) == pytest.approx(crown[1], abs=1e-6)


def test_hand_worked_margins_and_certificate(hand_net):
    y = torch.tensor([0])
    crown = margin_lower_bounds(hand_net, _pixel(0.4), y, 0.2, "crown", dtype=torch.float64)
    ibp = margin_lower_bounds(hand_net, _pixel(0.4), y, 0.2, "ibp", dtype=torch.float64)
    assert float(crown[0, 1]) == pytest.approx(0.2, abs=1e-6) and float(ibp[0, 1]) == pytest.approx(-0.1, abs=1e-6)
    assert certified_linf_curve(hand_net, _pixel(0.4), y, [0.0, 0.2], method="crown") == [1.0, 1.0]
    assert certified_linf_curve(hand_net, _pixel(0.4), y, [0.0, 0.2], method="ibp") == [1.0, 0.0]


def test_bounds_against_exhaustive_enumeration():
    """A random two-pixel net, every point of a 301 × 301 grid of the (clipped) box: the bounds contain the
    enumerated range, CROWN's interval lies inside IBP's, and CROWN is much closer to the true range."""
    torch.manual_seed(11)
    config = MLPConfig(in_shape=(1, 1, 2), widths=(12, 8), num_classes=4, mean=(0.5,), std=(0.3,))
    model = MLP(config).eval().double()
    centres = torch.tensor([[0.5, 0.5], [0.1, 0.9], [0.02, 0.3]], dtype=torch.float64)
    t = torch.linspace(0, 1, 301, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)
    gaps = {"ibp": 0.0, "crown": 0.0}
    for c, eps in itertools.product(centres, (0.02, 0.1, 0.3)):
        lo, hi = (c - eps).clamp(0, 1), (c + eps).clamp(0, 1)
        pts = lo + (hi - lo) * grid
        with torch.no_grad():
            out = model(pts.reshape(-1, 1, 1, 2))
        true_lo, true_hi = out.min(0).values, out.max(0).values
        x = c.reshape(1, 1, 1, 2)
        bounds = {m: logit_bounds(model, x, eps, m, dtype=torch.float64) for m in ("ibp", "crown")}
        for m, (lower, upper) in bounds.items():
            assert (lower[0] <= true_lo + 1e-9).all() and (upper[0] >= true_hi - 1e-9).all(), (m, c, eps)
            gaps[m] += float((upper[0] - lower[0]).sum() - (true_hi - true_lo).sum())
        assert (bounds["crown"][0] >= bounds["ibp"][0] - 1e-9).all()
        assert (bounds["crown"][1] <= bounds["ibp"][1] + 1e-9).all()
    assert gaps["crown"] < 0.5 * gaps["ibp"], gaps
