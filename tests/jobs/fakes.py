"""Tiny synthetic 'fashion_mnist' (1x4x4 images, 3 classes) patched into backend.data/backend.train."""

from __future__ import annotations

import torch

from backend.data import DatasetInfo

TINY_INFO = DatasetInfo("fashion_mnist", (1, 4, 4), 3, (0.5,), (0.25,), ("a", "b", "c"))


def tiny_split(train: bool, n_train: int = 256, n_test: int = 64):
    """Learnable toy data: the class is which third of the image holds the brightest pixels."""
    g = torch.Generator().manual_seed(1 if train else 2)
    n = n_train if train else n_test
    x = torch.randint(0, 120, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (n,), generator=g)
    for c in range(3):  # brighten a band of pixels per class
        rows = slice(c, c + 2)
        x[y == c, :, rows, :] += 120
    return x, y


def patch_tiny_data(monkeypatch) -> None:
    import backend.data
    import backend.train

    def load_split(name, train, **_):
        return tiny_split(train)

    def dataset_info(name):
        return TINY_INFO

    for module in (backend.data, backend.train):
        monkeypatch.setattr(module, "load_split", load_split)
        monkeypatch.setattr(module, "dataset_info", dataset_info)
