"""Dataset names and the 'not available' error, without torch: the CLI's parser and error handling read
them, and `--help` must not pay for importing torch (backend.data re-exports both)."""

from __future__ import annotations

DATASETS = ("cifar10", "fashion_mnist", "mnist")


class DatasetUnavailable(RuntimeError):
    """The dataset is neither on this machine nor downloadable; the message says what to do."""
