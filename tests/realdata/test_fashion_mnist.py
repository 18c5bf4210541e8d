"""Real Fashion-MNIST from Debian's dataset-fashion-mnist: loading, caching, and a small MLP that learns."""

from __future__ import annotations

import time

import pytest
import torch

from backend import data
from backend.train import TrainConfig, train_models

pytestmark = pytest.mark.realdata


def test_load_split_from_debian_copy_and_cache():
    data.clear_memo()
    x, y = data.load_split("fashion_mnist", True, download=False)
    xt, yt = data.load_split("fashion_mnist", False, download=False)
    assert x.shape == (60000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28)
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    assert y.min() == 0 and y.max() == 9 and yt.min() == 0 and yt.max() == 9
    assert torch.bincount(y).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    cache = data.data_dir() / "cache" / "fashion_mnist-train.safetensors"
    assert cache.exists()
    data.clear_memo()  # as a fresh process would: the second load reads our tensor cache
    t0 = time.perf_counter()
    x2, y2 = data.load_split("fashion_mnist", True, download=False)
    assert time.perf_counter() - t0 < 30
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert data.dataset_status("fashion_mnist") == "available"
    data.clear_memo()


def test_small_mlp_learns_and_is_reproducible():
    # the whole split for one epoch (~2 s on 2 cores): ~0.79 test accuracy, well clear of the bar
    config = TrainConfig(dataset="fashion_mnist", widths=(64, 32), epochs=1, batch_size=512)
    (model,) = train_models(config, [0], device="cpu")
    assert model.test_acc > 0.70, f"test accuracy {model.test_acc:.3f}"
    quick = TrainConfig(dataset="fashion_mnist", widths=(16,), epochs=1, batch_size=256, train_subset=2000)
    a = train_models(quick, [11], device="cpu")[0].params
    b = train_models(quick, [11], device="cpu")[0].params
    assert all(torch.equal(a[k], b[k]) for k in a)
    data.clear_memo()
