"""backend.train on a tiny synthetic dataset (1x6x6 images, 3 classes, a few hundred samples)."""

from __future__ import annotations

import math

import pytest
import torch

from backend.data import DatasetInfo
from backend.models import mlp_from_state_dict
from backend.progress import Cancelled
from backend.train import TrainConfig, TrainData, seeds_for, train_models

INFO = DatasetInfo("synthetic", (1, 6, 6), 3, (0.5,), (0.25,), ("a", "b", "c"))


@pytest.fixture(scope="module")
def tiny_data():
    g = torch.Generator().manual_seed(0)
    prototypes = torch.randint(0, 256, (3, 1, 6, 6), generator=g)

    def make(n):
        y = torch.randint(0, 3, (n,), generator=g)
        noise = torch.randint(-60, 60, (n, 1, 6, 6), generator=g)
        return (prototypes[y] + noise).clamp(0, 255).to(torch.uint8), y

    x_tr, y_tr = make(300)
    x_te, y_te = make(150)
    return TrainData(x_tr, y_tr, x_te, y_te, INFO)


def tiny(**kw):
    base = dict(dataset="mnist", widths=(8, 6), epochs=3, batch_size=64, lr=1e-2, augment=False)
    return TrainConfig(**{**base, **kw})


def l1_norm(params):
    return sum(v.abs().sum().item() for k, v in params.items() if k.endswith("weight"))


def l2_norm(params):
    return sum(v.square().sum().item() for k, v in params.items() if k.endswith("weight"))


def test_reproducible_bit_identical(tiny_data):
    a = train_models(tiny(augment=True), [5, 6], data=tiny_data)
    b = train_models(tiny(augment=True), [5, 6], data=tiny_data)
    for ma, mb in zip(a, b, strict=True):
        assert ma.params.keys() == mb.params.keys()
        assert all(torch.equal(ma.params[k], mb.params[k]) for k in ma.params)
    assert not torch.equal(a[0].params["layers.0.weight"], a[1].params["layers.0.weight"])


def test_stacked_matches_one_at_a_time(tiny_data):
    alone = train_models(tiny(augment=True), [1, 2, 3], data=tiny_data, stack=1)
    stacked = train_models(tiny(augment=True), [1, 2, 3], data=tiny_data, stack=3)
    for a, s in zip(alone, stacked, strict=True):
        for k in a.params:
            torch.testing.assert_close(a.params[k], s.params[k], rtol=1e-5, atol=1e-6)
        assert a.test_acc == pytest.approx(s.test_acc)


def test_step_curve_points_average_to_the_epoch_means_and_change_nothing(tiny_data):
    """curve_every=1: each step's point is that batch's mean, so the points of an epoch, weighted by batch
    size, give exactly the epoch's mean loss and accuracy; the trained weights are the same as without."""
    epochs, steps = [], []
    plain = train_models(tiny(), [1, 2], data=tiny_data, stack=2)
    traced = train_models(tiny(), [1, 2], data=tiny_data, stack=2, on_epoch=lambda *a: epochs.append(a),
                          on_step=lambda *a: steps.append(a), curve_every=1)
    for a, b in zip(plain, traced, strict=True):
        assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    sizes = [64, 64, 64, 64, 44]  # 300 samples in batches of 64: 5 steps per epoch
    assert [s[2] for s in steps] == list(range(1, 16)) and {s[0] for s in steps} == {0}
    assert [s[1] for s in steps[:5]] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    for model, epoch, loss, acc in epochs:
        window = steps[(epoch - 1) * 5:epoch * 5]
        assert sum(s[3][model] * n for s, n in zip(window, sizes, strict=True)) / 300 == pytest.approx(loss, rel=1e-5)
        assert sum(s[4][model] * n for s, n in zip(window, sizes, strict=True)) / 300 == pytest.approx(acc, rel=1e-5)
    coarse = []
    train_models(tiny(), [1], data=tiny_data, on_step=lambda *a: coarse.append(a), curve_every=4)
    assert [s[2] for s in coarse] == [4, 8, 12] and coarse[1][1] == pytest.approx(1.6)  # windows span epochs
    with pytest.raises(ValueError, match="N >= 1"):
        train_models(tiny(), [1], data=tiny_data, on_step=lambda *a: None, curve_every=0)


def test_learns_and_state_dict_fits_mlp(tiny_data):
    events = []
    (model,) = train_models(tiny(epochs=6), [0], data=tiny_data, progress=events.append)
    assert model.train_loss < 0.5 * math.log(3)
    assert model.train_acc > 0.8 and model.test_acc > 0.8
    losses = [e.metrics["loss"] for e in events]
    assert losses[-1] < losses[0]
    assert all(e.stage == "train" for e in events) and events[-1].done == events[-1].total
    mlp = mlp_from_state_dict(model.params)
    with torch.no_grad():
        acc = (mlp(tiny_data.x_test.float() / 255).argmax(1) == tiny_data.y_test).float().mean().item()
    assert acc == pytest.approx(model.test_acc)
    assert model.params["mean"].tolist() == [0.5] and model.seconds > 0


@pytest.mark.parametrize("reg, norm", [("l1", l1_norm), ("l2", l2_norm)])
def test_regularisation_shrinks_weights(tiny_data, reg, norm):
    (plain,) = train_models(tiny(), [7], data=tiny_data)
    (shrunk,) = train_models(tiny(reg=reg, reg_strength=1e-2), [7], data=tiny_data)
    assert norm(shrunk.params) < 0.9 * norm(plain.params)


def test_sgd_and_subset(tiny_data):
    (m,) = train_models(tiny(optimizer="sgd", lr=0.1, train_subset=100, epochs=2), [3], data=tiny_data)
    assert all(torch.isfinite(v).all() for v in m.params.values())
    with pytest.raises(ValueError, match="larger than the training split"):
        train_models(tiny(train_subset=301), [3], data=tiny_data)


def test_progress_can_cancel(tiny_data):
    def stop(event):
        raise Cancelled()

    with pytest.raises(Cancelled):
        train_models(tiny(), [0], data=tiny_data, progress=stop)


@pytest.mark.parametrize("kw, match", [
    (dict(dataset="cifar100"), "unknown dataset"),
    (dict(widths=()), "widths"),
    (dict(widths=(8, 0)), "widths"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=-1), "batch_size"),
    (dict(optimizer="lion"), "optimizer"),
    (dict(lr=0), "lr"),
    (dict(momentum=1.0), "momentum"),
    (dict(reg="l3"), "reg must"),
    (dict(reg="l1", reg_strength=-1), "reg_strength"),
    (dict(reg_strength=0.1), "reg is 'none'"),
    (dict(train_subset=0), "train_subset"),
    (dict(augment="yes"), "augment"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_config_round_trip_and_key():
    c = TrainConfig(dataset="fashion_mnist", widths=[64, 32], reg="l2", reg_strength=1e-4)
    d = c.to_dict()
    assert d["widths"] == [64, 32]
    assert TrainConfig.from_dict(d) == c and TrainConfig.from_dict(d).key() == c.key()
    assert len(c.key()) == 16 and c.key() != TrainConfig().key()
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({**d, "dropout": 0.5})
    assert TrainConfig().use_augment and not TrainConfig(dataset="mnist").use_augment


def test_seeds_for():
    s = seeds_for(0, 50)
    assert s == seeds_for(0, 50) and len(set(s)) == 50
    assert seeds_for(0, 3) == s[:3]
    assert not set(seeds_for(1, 50)) & set(s)
    assert all(0 <= x < 2**31 for x in s)
    with pytest.raises(ValueError):
        train_models(tiny(), [], data=None)
