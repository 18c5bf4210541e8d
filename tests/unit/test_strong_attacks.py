"""PGD, APGD and the strong-attack curve: known answers on linear models, semantics on a tiny trained MLP."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn

from backend.evaluate.apgd import apgd, checkpoints
from backend.evaluate.deepfool import _median, deepfool_curve
from backend.evaluate.fgsm import fgsm_curve
from backend.evaluate.pgd import dlr_loss, pgd, project, random_start
from backend.evaluate.strong import (
    curve_from_first,
    ensemble,
    first_fooled_eps,
    median_perturbation,
    search_grid,
    strong_curve,
    strong_search,
)
from backend.models import MLP, MLPConfig
from tests.unit.test_attacks import LINF, trained  # noqa: F401  (the module-scoped tiny model fixture)


class Linear(nn.Module):
    def __init__(self, w: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.w.T + self.b


@pytest.fixture(scope="module")
def linear_case():
    """A linear model on 12 pixels near 0.5 (the box [0, 1] stays out of reach at these eps): classes 0 and 1
    share a boundary through the data, class 2 is far away, so the nearest boundary is the one between 0 and 1
    and the loss gradients point straight at it (the DLR loss needs a third class)."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(3, 12, generator=g)
    b = torch.randn(3, generator=g) * 0.1 - 0.5 * w.sum(1)  # boundaries pass near the centre 0.5
    b[2] -= 100.0
    x = 0.5 + 0.05 * torch.randn(12, 12, generator=g)
    model = Linear(w, b)
    y = model(x).argmax(1)  # every sample correct: the minimal perturbation is the distance to a boundary
    logits = model(x)
    diff = w[y][:, None, :] - w[None, :, :]  # [N, K, D] w_y − w_j
    margin = logits.gather(1, y[:, None]) - logits  # [N, K]
    mask = torch.arange(3)[None, :] == y[:, None]
    dist = {p: (margin / diff.norm(p=1 if p == "linf" else 2, dim=2).clamp_min(1e-12)).masked_fill(mask, 1e9)
            .amin(1) for p in ("linf", "l2")}  # dual norms: L1 for L∞, L2 for L2
    return model, x, y, dist


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("method", ["pgd", "apgd_ce", "apgd_dlr"])
def test_linear_model_minimal_perturbation(linear_case, norm, method):
    """Just outside the analytic minimal distance (5 %) every sample is fooled, just inside none can be."""
    model, x, y, dist = linear_case
    assert float(dist[norm].max()) < 0.2
    (attack,) = ensemble(method, norm, steps=100, restarts=1)
    g = torch.Generator().manual_seed(0)
    for i in range(x.shape[0]):
        d = float(dist[norm][i])
        adv, fooled = attack(model, x[i:i + 1], y[i:i + 1], 1.05 * d, generator=g)
        assert bool(fooled[0]), f"sample {i}: not fooled at 1.05x the minimal {norm} distance {d:.4f}"
        delta = (adv - x[i:i + 1]).flatten()
        size = delta.abs().max() if norm == "linf" else delta.norm()
        assert size <= 1.05 * d + 1e-6 and 0 <= adv.min() and adv.max() <= 1
        _, fooled = attack(model, x[i:i + 1], y[i:i + 1], 0.95 * d, generator=g)
        assert not bool(fooled[0])


def test_dlr_loss_known_value_and_invariance():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, 5.0]])
    y = torch.tensor([0, 1])
    # sample 0: correct, z_y − max other = 2, π1 − π3 = 3 − 0 → −2/3; sample 1: 2 − 5 = −3, 5 − 1 = 4 → 3/4
    torch.testing.assert_close(dlr_loss(logits, y), torch.tensor([-2 / 3, 3 / 4]))
    torch.testing.assert_close(dlr_loss(4 * logits + 7, y), dlr_loss(logits, y))
    with pytest.raises(ValueError, match="3 classes"):
        dlr_loss(logits[:, :2], y)


def test_checkpoints_follow_the_paper():
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert all(0 < c <= 10 for c in checkpoints(10)) and checkpoints(1) == [1]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_and_random_start_stay_in_ball_and_box(norm):
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(50, 20, generator=g)
    x0[:, :3] = 0.0
    start = random_start(x0, 0.2, norm, g)
    far = project(x0 + torch.randn(50, 20, generator=g), x0, 0.2, norm)
    for z in (start, far):
        size = (z - x0).abs().amax(1) if norm == "linf" else (z - x0).norm(dim=1)
        assert (size <= 0.2 + 1e-6).all() and z.min() >= 0 and z.max() <= 1


def test_curve_semantics_on_tiny_mlp(trained):  # noqa: F811
    model, x, y, acc = trained
    grid = LINF[:4]
    fgsm = fgsm_curve(model, x, y, grid)
    for name in ("pgd", "apgd"):
        curve = strong_curve(model, x, y, grid, attack=name, steps=10)
        assert curve[0] == pytest.approx(acc)
        assert all(b <= a for a, b in zip(curve, curve[1:], strict=False))
        assert all(s <= f + 0.01 for s, f in zip(curve, fgsm, strict=True)), (name, curve, fgsm)
    assert curve[-1] < fgsm[-1] or fgsm[-1] == 0  # stronger than one step where there is room


def test_fooled_samples_are_not_attacked_again(trained):  # noqa: F811
    model, x, y, _ = trained
    calls = []

    def counting(model, xb, yb, eps, generator=None, x_init=None):
        calls.append((eps, xb.shape[0]))
        return pgd(model, xb, yb, eps, steps=10, generator=generator, x_init=x_init)

    first = first_fooled_eps(model, x, y, [0.2, 0.0, 0.05], [counting], batch_size=1000, search="walk")
    with torch.no_grad():
        wrong = model(x).argmax(1) != y
    assert (first[wrong] == 0).all()
    n05 = int((first == 0.05).sum())
    assert calls == [(0.05, int((~wrong).sum())), (0.2, int((~wrong).sum()) - n05)]
    assert curve_from_first(first, [0.2, 0.0]) == [float((first > 0.2).double().mean()),
                                                  float((~wrong).double().mean())]


def test_bisect_attacks_the_largest_eps_first_and_robust_samples_once(trained):  # noqa: F811
    """Top first: a sample not fooled at the largest ε is never attacked again; a fooled one is bisected."""
    model, x, y, _ = trained
    grid = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2]
    calls = []

    def counting(model, xb, yb, eps, generator=None, x_init=None):
        calls.append((eps, xb.shape[0], x_init is not None and bool(x_init.isnan().all(dim=1).all())))
        return pgd(model, xb, yb, eps, steps=10, generator=generator, x_init=x_init)

    result = search_grid(model, x, y, grid, [counting], batch_size=1000)
    with torch.no_grad():
        wrong = model(x).argmax(1) != y
    assert calls[0] == (0.2, int((~wrong).sum()), True)  # every clean-correct sample, none warm yet
    fooled_top = int(torch.isfinite(result.first).sum() - wrong.sum())
    assert sum(n for e, n, _ in calls[1:]) <= fooled_top * 3  # ⌈log₂ 5⌉ probes below the top, at most
    assert all(not fresh for _, _, fresh in calls[1:])  # later probes are warm-started
    walk = first_fooled_eps(model, x, y, grid, [partial(pgd, steps=10)], search="walk")
    assert (result.first == 0).sum() == (walk == 0).sum() == wrong.sum()
    # each sample's size is its adversarial's distance, at most its first fooled ε, and really fools the model
    fooled = torch.isfinite(result.first) & (result.first > 0)
    assert (result.size[fooled] <= result.first[fooled] + 1e-6).all() and (result.size[fooled] > 0).all()
    assert torch.isinf(result.size[torch.isinf(result.first)]).all() and (result.size[wrong] == 0).all()


def test_apgd_returns_the_adversarial_it_reports(trained):  # noqa: F811
    model, x, y, _ = trained
    adv, fooled = apgd(model, x, y, 0.1, steps=20, loss="dlr", generator=torch.Generator().manual_seed(0))
    assert fooled.any() and (~fooled).any()
    assert (model(adv[fooled]).argmax(1) != y[fooled]).all()
    assert (model(adv[~fooled]).argmax(1) == y[~fooled]).all()
    assert (adv - x).abs().max() <= 0.1 + 1e-6


def test_bad_arguments(trained):  # noqa: F811
    model, x, y, _ = trained
    with pytest.raises(ValueError, match="norm"):
        pgd(model, x, y, 0.1, norm="l1")
    with pytest.raises(ValueError, match="steps"):
        apgd(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="eps"):
        pgd(model, x, y, -0.1)
    with pytest.raises(ValueError, match="unknown attack ensemble"):
        strong_curve(model, x, y, LINF, attack="cw")
    with pytest.raises(ValueError, match="eps_grid"):
        strong_curve(model, x, y, [])


def _as_mlp(model: Linear) -> MLP:
    """The linear model as a one-hidden-layer MLP: pixels ≥ 0 pass the identity layer's ReLU unchanged."""
    d = model.w.shape[1]
    config = MLPConfig(in_shape=(1, 3, 4), widths=(d,), num_classes=3, mean=(0.0,), std=(1.0,))
    mlp = MLP(config).eval()
    with torch.no_grad():
        mlp.layers[0].weight.copy_(torch.eye(d))
        mlp.layers[0].bias.zero_()
        mlp.layers[1].weight.copy_(model.w)
        mlp.layers[1].bias.copy_(model.b)
    return mlp


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", ["pgd", "apgd"])
def test_median_perturbation_known_answer_and_deepfool(linear_case, norm, attack):
    """On a linear model the minimal adversarial distance is analytic (margin over the dual norm of w_y − w_j).
    Per sample the strong search's first fooled grid ε is never below it (sound) and at most the first grid
    point past 1.05× it (the attack reaches it); the median perturbation lies between the analytic median and
    its grid-rounded 1.05× value, and agrees with DeepFool's median (exact on linear models up to its 2 %
    overshoot) within a grid step plus 5 %."""
    model, x, y, dist = linear_case
    mlp = _as_mlp(model)
    images = x.reshape(-1, 1, 3, 4)
    torch.testing.assert_close(mlp(images), model(x))
    step = 0.004 if norm == "linf" else 0.01
    grid = [round(step * i, 6) for i in range(61)]
    d = dist[norm].double()
    result = strong_search(mlp, images, y, grid, attack=attack, norm=norm, steps=100)
    assert (result.first >= d - 1e-6).all()
    reach = torch.tensor([min(g for g in grid if g >= 1.05 * float(v)) for v in d], dtype=torch.float64)
    assert (result.first <= reach + 1e-9).all(), (result.first, reach)
    assert ((result.size >= d - 1e-5) & (result.size <= result.first + 1e-6)).all()
    median = median_perturbation(result)
    truth = _median(d)
    assert truth - 1e-5 <= median <= _median(reach) + 1e-6
    _, deepfool = deepfool_curve(mlp, images, y, [0.0], p=norm)
    assert abs(median - deepfool) <= step + 0.05 * truth, (median, deepfool, truth)


def test_median_perturbation_counts_unfooled_as_infinite(trained):  # noqa: F811
    model, x, y, _ = trained
    result = strong_search(model, x, y, [0.0, 0.001], attack="pgd", steps=5)
    assert median_perturbation(result) == math.inf  # most samples survive ε = 0.001
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    sizes = result.size[correct]
    assert median_perturbation(result) == _median(sizes)
