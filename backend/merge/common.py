"""Checks and arithmetic every merge method shares.

Merging only makes sense between models of one architecture trained on one dataset, so we refuse
anything else up front with a message naming the offending model and key, instead of failing deep
inside a matmul (or, worse, silently averaging NaNs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from backend.merge.errors import MergeError

Params = dict[str, Tensor]
BUFFER_KEYS = ("mean", "std")  # input normalisation: fixed, never averaged, taken from the first model


def check_compatible(models: Sequence[Mapping[str, Tensor]]) -> None:
    """Same keys, shapes and input normalisation; finite floating-point weights; at least one model."""
    if not isinstance(models, Sequence) or isinstance(models, Mapping):
        raise MergeError("expected a list of state dicts")
    if len(models) == 0:
        raise MergeError("no models to merge: the list is empty")
    reference = models[0]
    for i, params in enumerate(models):
        if not isinstance(params, Mapping) or not params:
            raise MergeError(f"model {i} is not a non-empty state dict")
        if set(params) != set(reference):
            missing = sorted(set(reference) - set(params))
            extra = sorted(set(params) - set(reference))
            raise MergeError(f"model {i} has different keys from model 0 (missing {missing}, extra {extra})")
        for key, value in params.items():
            if not isinstance(value, Tensor) or not value.dtype.is_floating_point:
                raise MergeError(f"model {i}: '{key}' is not a floating-point tensor")
            if value.shape != reference[key].shape:
                raise MergeError(
                    f"model {i}: '{key}' has shape {tuple(value.shape)} but model 0 has "
                    f"{tuple(reference[key].shape)} (different widths cannot be merged)"
                )
            if not torch.isfinite(value).all():
                raise MergeError(f"model {i}: '{key}' contains NaN or infinite values")
        for key in BUFFER_KEYS:
            if key in params and not torch.allclose(params[key], reference[key]):
                raise MergeError(
                    f"model {i} normalises its input differently from model 0 ('{key}' differs); "
                    "merge only models trained on the same dataset"
                )


def check_lam(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not math.isfinite(lam) or not 0.0 <= lam <= 1.0:
        raise MergeError(f"lam must be a number in [0, 1], got {lam!r}")
    return float(lam)


def interpolate(a: Mapping[str, Tensor], b: Mapping[str, Tensor], lam: float) -> Params:
    """(1 - lam) * a + lam * b for every weight; normalisation buffers come from a. New tensors."""
    lam = check_lam(lam)
    check_compatible([a, b])
    return {k: a[k].clone() if k in BUFFER_KEYS else torch.lerp(a[k], b[k].to(a[k]), lam) for k in a}


def mean_params(models: Sequence[Mapping[str, Tensor]]) -> Params:
    """Elementwise mean of state dicts (buffers from the first); no checks, callers check once."""
    first = models[0]
    return {
        k: first[k].clone() if k in BUFFER_KEYS else torch.stack([m[k].to(first[k]) for m in models]).mean(0)
        for k in first
    }
