"""Linear mode connectivity and REPAIR on two independently trained Fashion-MNIST MLPs (small, seconds)."""

from __future__ import annotations

import pytest
import torch

from backend import data
from backend.connectivity import ConnectivityConfig, align, curves_for_pair
from backend.evaluate.accuracy import accuracy_and_loss
from backend.merge.common import interpolate
from backend.merge.repair import repair
from backend.models import mlp_from_state_dict
from backend.train import TrainConfig, train_models

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def pair_and_data():
    config = TrainConfig(dataset="fashion_mnist", widths=(64, 64, 64), epochs=2, batch_size=256, train_subset=10000)
    a, b = (m.params for m in train_models(config, [1, 2], device="cpu"))
    x, y = data.load_split("fashion_mnist", False, download=False)
    x_train, _ = data.load_split("fashion_mnist", True, download=False)
    idx = torch.randperm(x_train.shape[0], generator=torch.Generator().manual_seed(0))[:2000]
    yield a, b, (data.to_float(x[:2000]), y[:2000]), data.to_float(x_train[idx])
    data.clear_memo()


def test_naive_barrier_is_larger_than_the_aligned_ones(pair_and_data):
    a, b, test, images = pair_and_data
    config = ConnectivityConfig(lam_grid=(0, 0.25, 0.5, 0.75, 1), images=2000)
    curves = {c.align: c for c in curves_for_pair(a, b, config, test=test, images=images)}
    naive = curves["none"]
    for method in ("weight", "activation"):
        assert curves[method].loss_barrier < naive.loss_barrier, method
        assert curves[method].accuracy_barrier < naive.accuracy_barrier, method
    assert naive.accuracy_barrier > 0.1  # two independent models really sit in different basins here


def test_repaired_midpoint_beats_the_plain_weight_matched_midpoint(pair_and_data):
    a, b, (x, y), images = pair_and_data
    aligned, _ = align(a, b, "weight")
    plain = interpolate(a, aligned, 0.5)
    fixed = repair(plain, [a, aligned], [0.5, 0.5], images)
    acc_plain, _ = accuracy_and_loss(mlp_from_state_dict(plain), x, y)
    acc_fixed, _ = accuracy_and_loss(mlp_from_state_dict(fixed), x, y)
    assert acc_fixed > acc_plain, (acc_fixed, acc_plain)
