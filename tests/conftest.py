"""Shared fixtures: every test gets its own store home and data dir; tiny models on the CPU."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def lab_home(tmp_path, monkeypatch):
    """Isolate the store and datasets for each test (REBASIN_HOME / REBASIN_DATA under tmp)."""
    home = tmp_path / "home"
    data = tmp_path / "data"
    monkeypatch.setenv("REBASIN_HOME", str(home))
    monkeypatch.setenv("REBASIN_DATA", str(data))
    return home


def _require(condition: bool, what: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing; .ci/run must install it (CI must not skip this test)")
    pytest.skip(f"{what} is missing")


@pytest.fixture
def fashion_mnist_available():
    _require((FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
             "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)")
    return FASHION_DIR


@pytest.fixture
def chromium_path():
    path = shutil.which("chromium") or "/usr/bin/chromium"
    _require(Path(path).exists(), "Debian package chromium")
    return path


def pytest_collection_modifyitems(config, items):
    """Tests marked realdata/browser get the availability check even without asking for the fixture."""
    for item in items:
        if item.get_closest_marker("realdata") and "fashion_mnist_available" not in item.fixturenames:
            item.fixturenames.append("fashion_mnist_available")
        if item.get_closest_marker("browser") and "chromium_path" not in item.fixturenames:
            item.fixturenames.append("chromium_path")


@pytest.fixture
def tiny_config():
    from backend.models import MLPConfig

    return MLPConfig(in_shape=(1, 4, 4), widths=(8, 6), num_classes=3, mean=(0.5,), std=(0.25,))


@pytest.fixture
def make_tiny_params(tiny_config):
    """Factory: independently initialised tiny MLP state dicts, seeded."""
    from backend.models import MLP, state_dict_of

    def make(seed: int = 0, config=None):
        torch.manual_seed(seed)
        return state_dict_of(MLP(config or tiny_config))

    return make
