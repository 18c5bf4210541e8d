"""IBP / CROWN bounds and certified curves on tiny MLPs: the bounds contain every sampled output, CROWN is at
least as tight as IBP, certified samples withstand strong attacks, and the bracket certified ≤ attacked holds."""

from __future__ import annotations

import math

import pytest
import torch

from backend.evaluate.certify import (
    certified_l2_curve,
    certified_linf_curve,
    input_box,
    logit_bounds,
    margin_lower_bounds,
)
from backend.evaluate.fgsm import fgsm_curve
from backend.evaluate.lipschitz import local_lipschitz
from backend.evaluate.strong import strong_curve
from backend.models import MLP, MLPConfig
from tests.unit.test_attacks import L2, LINF, trained  # noqa: F401  (module-scoped tiny model fixture)


@pytest.fixture(scope="module")
def random_net():
    torch.manual_seed(5)
    config = MLPConfig(in_shape=(1, 2, 3), widths=(7, 5, 4), num_classes=3, mean=(0.4,), std=(0.3,))
    model = MLP(config).eval()
    x = torch.rand(6, 1, 2, 3)
    x[0, 0, 0, :] = 0.0  # pixels on the box's edge: the clipped set is smaller than the ball
    return model, x


@pytest.mark.parametrize("method", ["ibp", "crown"])
@pytest.mark.parametrize("eps", [0.0, 0.02, 0.1, 0.3])
def test_bounds_contain_dense_samples(random_net, method, eps):
    model, x = random_net
    lower, upper = logit_bounds(model, x, eps, method)
    y = model(x).argmax(1)
    margin_lo = margin_lower_bounds(model, x, y, eps, method)
    g = torch.Generator().manual_seed(0)
    flat = x.reshape(6, -1)
    lo, hi = input_box(flat, eps)
    for i in range(6):
        u = torch.rand(20000, flat.shape[1], generator=g)
        u[:64] = (torch.rand(64, flat.shape[1], generator=g) > 0.5).float()  # box corners too
        pts = lo[i] + (hi[i] - lo[i]) * u
        with torch.no_grad():
            out = model(pts)
        assert (out >= lower[i] - 1e-5).all() and (out <= upper[i] + 1e-5).all()
        margins = out[:, y[i]][:, None] - out
        others = torch.arange(3) != y[i]
        assert (margins[:, others] >= margin_lo[i, others] - 1e-5).all() and margin_lo[i, y[i]] == math.inf
        if eps == 0.0:  # a point: the bounds are the output itself
            torch.testing.assert_close(lower[i], out[0], atol=1e-5, rtol=0)


def test_crown_at_least_as_tight_as_ibp_and_strictly_somewhere(random_net):
    model, x = random_net
    y = model(x).argmax(1)
    strictly = False
    for eps in (0.02, 0.1, 0.3):
        ibp_lo, ibp_hi = logit_bounds(model, x, eps, "ibp")
        cr_lo, cr_hi = logit_bounds(model, x, eps, "crown")
        assert (cr_lo >= ibp_lo - 1e-6).all() and (cr_hi <= ibp_hi + 1e-6).all()
        ibp_m, cr_m = margin_lower_bounds(model, x, y, eps, "ibp"), margin_lower_bounds(model, x, y, eps, "crown")
        assert (cr_m >= ibp_m - 1e-6).all()
        strictly |= bool((cr_lo > ibp_lo + 1e-4).any())
    assert strictly


def test_certified_linf_bracket_on_trained_model(trained):  # noqa: F811
    model, x, y, acc = trained
    grid = LINF[:4]
    ibp = certified_linf_curve(model, x, y, grid, method="ibp", batch_size=50)
    crown = certified_linf_curve(model, x, y, grid, method="crown", batch_size=50)
    attacked = strong_curve(model, x, y, grid, attack="apgd", steps=20)
    fgsm = fgsm_curve(model, x, y, grid)
    assert ibp[0] == crown[0] == pytest.approx(acc)
    for i in range(len(grid)):
        assert ibp[i] <= crown[i] <= attacked[i] <= fgsm[i] + 0.01
    assert crown[1] > 0 and crown[-1] < attacked[-1]  # something is certified, and not everything robust


def test_every_certified_sample_withstands_the_attack(trained):  # noqa: F811
    model, x, y, _ = trained
    from backend.evaluate.apgd import apgd
    from backend.evaluate.pgd import pgd

    eps = 0.05
    certified = margin_lower_bounds(model, x, y, eps, "crown").amin(1) > 0
    assert certified.sum() >= 10
    g = torch.Generator().manual_seed(1)
    for attack in (apgd, pgd):
        for loss in ("ce", "dlr"):
            _, fooled = attack(model, x[certified], y[certified], eps, steps=30, loss=loss, generator=g)
            assert not fooled.any()


def test_certified_l2_curve_matches_its_definition(trained):  # noqa: F811
    model, x, y, acc = trained
    grid = L2[:4]
    curve = certified_l2_curve(model, x, y, grid, batch_size=40)
    assert curve[0] == pytest.approx(acc)
    assert all(b <= a for a, b in zip(curve, curve[1:], strict=False))
    with torch.no_grad():
        logits = model(x)
    margin = logits.gather(1, y[:, None])[:, 0] - logits.scatter(1, y[:, None], -math.inf).amax(1)
    e = grid[2]
    direct = (margin > math.sqrt(2) * local_lipschitz(model, x, e) * e) & (margin > math.sqrt(2) *
                                                                          local_lipschitz(model, x, grid[1]) * grid[1])
    assert curve[2] == pytest.approx(float(direct.double().mean()))
    attacked = strong_curve(model, x, y, grid, attack="apgd", norm="l2", steps=20)
    assert all(c <= a for c, a in zip(curve, attacked, strict=True))


def test_bad_input(trained, random_net):  # noqa: F811
    model, x, y, _ = trained
    with pytest.raises(ValueError, match="method"):
        certified_linf_curve(model, x, y, LINF, method="lp")
    with pytest.raises(ValueError, match="MLP"):
        certified_linf_curve(torch.nn.Linear(16, 3), x, y, LINF)
    with pytest.raises(ValueError, match="eps"):
        margin_lower_bounds(model, x, y, -1.0)
