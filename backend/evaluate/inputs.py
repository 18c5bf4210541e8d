"""Input checks shared by every metric: one readable ValueError instead of a shape error deep in torch."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def expected_in_shape(model: nn.Module) -> tuple[int, ...] | None:
    """(C, H, W) of an MLP; None when the model does not say."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "in_shape"):
        return tuple(config.in_shape)
    return None


def num_classes(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "num_classes"):
        return int(config.num_classes)
    return None


def check_inputs(model: nn.Module, x: Tensor, y: Tensor | None = None) -> Tensor:
    """Validate a batch of pixels x [N, C, H, W] (or flat [N, D]) in [0, 1] and labels y [N].

    Returns x as float (uint8 pixels are scaled to [0, 1]); raises ValueError on any mismatch.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"inputs must be a torch tensor, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"inputs must be float pixels in [0, 1], got dtype {x.dtype}")
    if x.ndim not in (2, 4):
        raise ValueError(f"inputs must be [N, C, H, W] or [N, D], got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("there are no samples to evaluate")
    in_shape = expected_in_shape(model)
    if in_shape is not None:
        features = math.prod(x.shape[1:])
        if features != math.prod(in_shape) or (x.ndim == 4 and tuple(x.shape[1:]) != in_shape):
            raise ValueError(f"inputs of shape {tuple(x.shape[1:])} do not fit a model that expects {in_shape}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0 or lo != lo or hi != hi:
        raise ValueError(f"inputs must be pixels in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    if y is not None:
        if not isinstance(y, Tensor) or y.ndim != 1 or y.shape[0] != x.shape[0]:
            shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"labels must be a 1-D tensor with one label per sample ({x.shape[0]}), got {shape}")
        if y.is_floating_point() or y.dtype == torch.bool:
            raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
        k = num_classes(model)
        if k is not None and (int(y.min()) < 0 or int(y.max()) >= k):
            raise ValueError(f"labels must lie in [0, {k - 1}], got values in [{int(y.min())}, {int(y.max())}]")
    return x


def check_batch_size(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")


def check_grid(name: str, grid) -> list[float]:
    values = [float(v) for v in grid]
    if not values:
        raise ValueError(f"{name} must contain at least one value")
    if any(not (v >= 0) or v == float("inf") for v in values):
        raise ValueError(f"{name} must contain finite values >= 0, got {values}")
    return values
