"""Accuracy, FGSM, DeepFool and noise on tiny trained MLPs: semantics, shapes and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from backend.evaluate.accuracy import accuracy_and_loss
from backend.evaluate.config import EvalConfig
from backend.evaluate.deepfool import (
    analytic_input_jacobian,
    deepfool,
    deepfool_curve,
    deepfool_with_success,
    project,
)
from backend.evaluate.fgsm import _generic_curve_batch, _mlp_curve_batch, fgsm_curve
from backend.evaluate.noise import noise_curve
from backend.models import MLP, MLPConfig

LINF = [0.0, 0.02, 0.05, 0.1, 0.2, 0.4]
L2 = [0.0, 0.1, 0.3, 0.6, 1.0, 2.0]


def synthetic(config, n: int, seed: int, noise: float = 0.2):
    """Class prototypes plus Gaussian noise, clipped to [0, 1]: separable but not trivially."""
    g = torch.Generator().manual_seed(1234)
    protos = 0.3 + 0.4 * torch.rand((config.num_classes, *config.in_shape), generator=g)
    g.manual_seed(seed)
    y = torch.randint(0, config.num_classes, (n,), generator=g)
    x = (protos[y] + noise * torch.randn((n, *config.in_shape), generator=g)).clamp(0, 1)
    return x, y


def train_tiny(config, steps: int = 60, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    model = MLP(config)
    x, y = synthetic(config, 600, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for i in range(steps):
        sl = slice((i * 100) % 600, (i * 100) % 600 + 100)
        loss = F.cross_entropy(model(x[sl]), y[sl])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained():
    """One tiny trained model for the whole module (the conftest's tiny_config architecture)."""
    config = MLPConfig(in_shape=(1, 4, 4), widths=(8, 6), num_classes=3, mean=(0.5,), std=(0.25,))
    model = train_tiny(config)
    x, y = synthetic(config, 200, seed=2)
    acc, _ = accuracy_and_loss(model, x, y)
    assert 0.6 < acc < 1.0  # meaningful: mostly right, some wrong
    return model, x, y, acc


def non_increasing(values) -> bool:
    return all(b <= a + 1e-12 for a, b in zip(values, values[1:], strict=False))


def test_accuracy_matches_direct_count(trained):
    model, x, y, acc = trained
    with torch.no_grad():
        logits = model(x)
    a, loss = accuracy_and_loss(model, x, y, batch_size=7)
    assert a == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert loss == pytest.approx(float(F.cross_entropy(logits, y).detach()), rel=1e-5)


def test_fgsm_eps0_is_clean_accuracy_and_curve_decreases(trained):
    model, x, y, acc = trained
    curve = fgsm_curve(model, x, y, LINF, batch_size=64)
    assert curve[0] == pytest.approx(acc)
    assert non_increasing(curve)
    assert curve[-1] < acc  # the attack does something


def test_fgsm_matches_explicit_attack(trained):
    model, x, y, _ = trained
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    for eps, value in zip(LINF, fgsm_curve(model, x, y, LINF), strict=True):
        x_adv = (x + eps * grad.sign()).clamp(0, 1)
        assert value == pytest.approx(float((model(x_adv).argmax(1) == y).double().mean()))


def test_fgsm_mlp_shortcut_equals_generic_path(trained):
    model, x, y, _ = trained
    x = x.clone()
    x[:, :, 0, :] = 1.0  # saturated pixels: the shortcut's clipping correction must kick in
    x[:, :, 1, :] = 0.0
    with torch.no_grad():
        assert _mlp_curve_batch(model, x, y, LINF) == _generic_curve_batch(model, x, y, LINF)


def test_analytic_jacobian_equals_autograd(trained):
    model, x, _, _ = trained
    classes = torch.tensor([[0, 2], [1, 1], [2, 0]])
    jac = analytic_input_jacobian(model, x[:3], classes)  # [3, 2, D]
    for b in range(3):
        full = torch.autograd.functional.jacobian(lambda z: model(z[None])[0], x[b])  # [K, C, H, W]
        expected = full.reshape(full.shape[0], -1)[classes[b]]
        torch.testing.assert_close(jac[b], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p", ["linf", "l2"])
def test_deepfool_finds_misclassified_adversarials_in_bounds(trained, p):
    model, x, y, _ = trained
    pert, fooled = deepfool_with_success(model, x, labels=y, p=p, batch_size=64)
    x_adv = x + pert
    assert pert.shape == x.shape
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert fooled.float().mean() > 0.95  # a tiny MLP falls within 50 steps
    assert (model(x_adv[fooled]).argmax(1) != y[fooled]).all()
    correct = model(x).argmax(1) == y
    assert (pert[~correct] == 0).all()  # already misclassified: nothing to do
    assert (pert[correct].flatten(1).abs().amax(1) > 0).all()
    unlabelled = deepfool(model, x, p=p, batch_size=64)  # no labels: attack until the prediction changes
    assert torch.equal(unlabelled[correct], pert[correct])
    assert (unlabelled[~correct] != 0).any()


@pytest.mark.parametrize(("p", "grid"), [("linf", LINF), ("l2", L2)])
def test_deepfool_curve_semantics(trained, p, grid):
    model, x, y, acc = trained
    curve, median = deepfool_curve(model, x, y, grid, p=p, batch_size=50)
    assert curve[0] == pytest.approx(acc)
    assert non_increasing(curve)
    pert, fooled = deepfool_with_success(model, x, labels=y, p=p)
    flat = pert.flatten(1)
    norms = flat.abs().amax(1) if p == "linf" else flat.norm(dim=1)
    correct = model(x).argmax(1) == y
    assert median == pytest.approx(float(norms[correct & fooled].median()), rel=0.05)
    big = 2 * float(norms.max())  # beyond every minimal perturbation: only failures stay robust
    tail, _ = deepfool_curve(model, x, y, [big], p=p)
    assert tail[0] == pytest.approx(float((correct & ~fooled).double().mean()))


def test_projection_onto_balls():
    pert = torch.tensor([[0.3, -0.4], [0.01, 0.0]])
    assert torch.equal(project(pert, 0.1, "linf"), torch.tensor([[0.1, -0.1], [0.01, 0.0]]))
    l2 = project(pert, 0.1, "l2")
    torch.testing.assert_close(l2[0].norm(), torch.tensor(0.1))
    torch.testing.assert_close(l2[1], pert[1])


def test_noise_is_reproducible_and_starts_at_clean_accuracy(trained):
    model, x, y, acc = trained
    sigmas = [0.0, 0.1, 0.3, 0.6]
    a = noise_curve(model, x, y, sigmas, seed=3, batch_size=64)
    assert a == noise_curve(model, x, y, sigmas, seed=3, batch_size=17)  # batch size does not matter
    assert a[0] == pytest.approx(acc)
    assert a[-1] < acc
    b = noise_curve(model, x, y, sigmas, seed=4)
    assert b[0] == a[0] and b[1:] != a[1:]


@pytest.mark.parametrize(
    "kwargs",
    [dict(fgsm_eps=(0.0, -0.01)), dict(deepfool_l2_eps=(-1.0,)), dict(noise_sigma=(-0.1,)),
     dict(subset=0), dict(subset=-5), dict(metrics=("accuracy", "bogus")), dict(metrics=()),
     dict(deepfool_candidates=1), dict(batch_size=0), dict(lipschitz_radius=0.0)],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        EvalConfig(**kwargs)


def test_config_round_trip_and_key():
    config = EvalConfig(subset=500, fgsm_eps=(0, 0.01))
    again = EvalConfig.from_dict(config.to_dict())
    assert again == config and again.key() == config.key() and len(config.key()) == 16
    assert EvalConfig.from_dict({"fgsm_eps": [0, 0.01], "subset": 500}).key() == config.key()
    assert EvalConfig(subset=501, fgsm_eps=(0, 0.01)).key() != config.key()
    with pytest.raises(ValueError):
        EvalConfig.from_dict({"epsilon": 1})


def test_bad_inputs_raise(trained):
    model, x, y, _ = trained
    wrong = torch.rand(4, 1, 5, 5)
    with pytest.raises(ValueError, match="do not fit"):
        accuracy_and_loss(model, wrong, y[:4])
    with pytest.raises(ValueError):
        fgsm_curve(model, wrong, y[:4], LINF)
    with pytest.raises(ValueError):
        deepfool(model, wrong)
    with pytest.raises(ValueError):
        noise_curve(model, wrong, y[:4], [0.1])
    with pytest.raises(ValueError):
        fgsm_curve(model, x, y, [0.1, -0.1])
    with pytest.raises(ValueError):
        deepfool_curve(model, x, y, [-0.1])
    with pytest.raises(ValueError):
        accuracy_and_loss(model, x, y[:-1])  # one label short
    with pytest.raises(ValueError):
        accuracy_and_loss(model, x * 3, y)  # not pixels in [0, 1]
    with pytest.raises(ValueError):
        accuracy_and_loss(model, x[:0], y[:0])  # empty
    with pytest.raises(ValueError):
        deepfool(model, x, p="l3")
