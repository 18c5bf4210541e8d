"""Linear mode connectivity: interpolation curves and loss/accuracy barriers between two models.

θ(λ) = (1−λ)·θ_A + λ·π(θ_B) on a λ grid, for π = identity ("none", naive interpolation), weight matching
or activation matching, each optionally followed by REPAIR at every λ. Barriers follow Frankle et al. 2020
/ Entezari et al. 2022: the largest gap between the curve and the straight line joining its endpoints,

    loss barrier     = max_λ [ L(θ(λ)) − ((1−λ)·L(θ_A) + λ·L(θ_B)) ]
    accuracy barrier = max_λ [ ((1−λ)·Acc(θ_A) + λ·Acc(θ_B)) − Acc(θ(λ)) ]

All λ points of a curve are evaluated (and repaired) as one stacked network (backend.stacked), in chunks
of at most `max_stack` models. Pure: tensors in, numbers out; loading data and storing rows is the job's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from backend.connectivity_config import (  # noqa: F401 - re-exported
    ALIGNMENTS,
    DEFAULT_GRID,
    MATCHERS,
    SPLITS,
    VERSION,
    ConnectivityConfig,
    check_grid,
    parse_grid,
)
from backend.merge.common import check_compatible
from backend.progress import ProgressFn, report
from backend.stacked import FirstLayer, stack_params, stacked_accuracy_and_loss


@dataclass
class Curve:
    align: str  # none | weight | activation
    repair: bool
    split: str  # test | train
    lams: list[float]
    accuracy: list[float]
    loss: list[float]
    seconds: float = 0.0

    @property
    def loss_barrier(self) -> float:
        return loss_barrier(self.lams, self.loss)

    @property
    def accuracy_barrier(self) -> float:
        return accuracy_barrier(self.lams, self.accuracy)

    def rows(self) -> list[tuple[str, bool, str, float | None, str, float]]:
        """Long format: (align, repair, split, lam | None, metric, value); barriers have lam None."""
        out = []
        for lam, acc, loss in zip(self.lams, self.accuracy, self.loss, strict=True):
            out.append((self.align, self.repair, self.split, lam, "accuracy", acc))
            out.append((self.align, self.repair, self.split, lam, "loss", loss))
        out.append((self.align, self.repair, self.split, None, "loss_barrier", self.loss_barrier))
        out.append((self.align, self.repair, self.split, None, "accuracy_barrier", self.accuracy_barrier))
        return out


def _chord(lams: Sequence[float], values: Sequence[float]) -> tuple[Tensor, Tensor]:
    lam = torch.tensor(list(lams), dtype=torch.float64)
    v = torch.tensor(list(values), dtype=torch.float64)
    if len(lam) != len(v) or len(lam) < 2 or lam[0] != 0.0 or lam[-1] != 1.0:
        raise ValueError("a barrier needs values on a λ grid from 0 to 1")
    return v, (1 - lam) * v[0] + lam * v[-1]


def loss_barrier(lams: Sequence[float], losses: Sequence[float]) -> float:
    """max_λ [L(λ) − ((1−λ)L(0) + λL(1))]: ≥ 0, as the endpoints themselves give 0."""
    v, line = _chord(lams, losses)
    return float((v - line).max())


def accuracy_barrier(lams: Sequence[float], accuracies: Sequence[float]) -> float:
    """max_λ [((1−λ)Acc(0) + λAcc(1)) − Acc(λ)]: the largest accuracy drop below the straight line."""
    v, line = _chord(lams, accuracies)
    return float((line - v).max())


def align(params_a: Mapping[str, Tensor], params_b: Mapping[str, Tensor], method: str, *, images: Tensor | None = None,
          seed: int = 0, max_iter: int = 100, progress: ProgressFn | None = None):
    """(π(B), MatchResult | None) for method none | weight | activation; activation needs `images`."""
    from backend.activation_matching import activation_matching
    from backend.matching import weight_matching
    from backend.permutation import apply_permutation, spec_for_params

    if method not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {method!r}; choose one of {', '.join(ALIGNMENTS)}")
    if method == "none":
        return dict(params_b), None
    spec = spec_for_params(params_a)
    if method == "weight":
        match = weight_matching(spec, params_a, params_b, max_iter=max_iter, seed=seed, progress=progress)
    else:
        if images is None:
            raise ValueError("activation matching needs a batch of images")
        match = activation_matching(spec, params_a, params_b, images, progress=progress)
    return apply_permutation(spec, match.perm, params_b), match


def image_batch(dataset: str, n: int, split: str = "train", seed: int = 0) -> Tensor:
    """n images (float [0, 1]) drawn without replacement from a split by a seeded permutation."""
    from backend.data import load_split, to_float

    if split not in SPLITS:
        raise ValueError(f"the image split must be one of {', '.join(SPLITS)}, got {split!r}")
    x, _ = load_split(dataset, train=split == "train")
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(int(seed)))[:n]
    return to_float(x[idx])


def lerp_stack(a: Mapping[str, Tensor], b: Mapping[str, Tensor], lams: Sequence[float]) -> dict[str, Tensor]:
    """θ(λ) for every λ as one stack {key: [G, ...]}; mean/std from a."""
    lam = torch.tensor(list(lams), dtype=torch.float32)
    out = {}
    for k, va in a.items():
        if k in ("mean", "std"):
            out[k] = va
        else:
            shape = (-1,) + (1,) * va.dim()
            lam_k = lam.to(va).reshape(shape)  # same dtype and device as the weights
            out[k] = va[None] * (1 - lam_k) + b[k].to(va)[None] * lam_k
    return out


def stack_size(params: Mapping[str, Tensor], batch_size: int, budget_bytes: int) -> int:
    """How many models fit one stacked pass: weights plus a few activation buffers per model."""
    n_weights = sum(v.numel() for k, v in params.items() if k not in ("mean", "std"))
    widest = max(v.shape[0] for k, v in params.items() if k.endswith(".weight"))
    per_model = 4 * (2 * n_weights + 4 * batch_size * widest)
    return max(1, budget_bytes // per_model)


def curves_for_pair(
    params_a: Mapping[str, Tensor],
    params_b: Mapping[str, Tensor],
    config: ConnectivityConfig,
    *,
    test: tuple[Tensor, Tensor],
    train: tuple[Tensor, Tensor] | None = None,
    images: Tensor | None = None,
    max_stack: int | None = None,
    budget_bytes: int = 1 << 30,
    progress: ProgressFn | None = None,
) -> list[Curve]:
    """Every (alignment, repair) variant of config, on the test split (and the train subset when given).

    images: the batch for activation matching and REPAIR (required when either is used).
    """
    from backend.merge.repair import hidden_stats, repair_stack, target_stats

    check_compatible([params_a, params_b])
    if (config.repair or "activation" in config.aligns) and images is None:
        raise ValueError("activation matching and REPAIR need a batch of images")
    splits = [("test", test)] + ([("train", train)] if train is not None else [])
    lams = list(config.lam_grid)
    chunk = max_stack or stack_size(params_a, config.batch_size, budget_bytes)
    variants = config.variants()
    curves: list[Curve] = []
    aligned: dict[str, dict] = {}
    for step, (method, repaired) in enumerate(variants):
        report(progress, "interpolate", step, len(variants), f"{method} alignment{' + REPAIR' if repaired else ''}")
        t0 = time.perf_counter()
        if method not in aligned:
            aligned[method] = align(params_a, params_b, method, images=images, seed=config.seed,
                                    max_iter=config.max_iter)[0]
        b = aligned[method]
        targets_src = None
        if repaired:
            ends = hidden_stats(stack_params([dict(params_a), b]), images)
            targets_src = [[(m[k], s[k]) for m, s in ends] for k in range(2)]
        results = {name: ([], []) for name, _ in splits}
        w0 = params_a["layers.0.weight"]
        basis = torch.stack([w0, b["layers.0.weight"].to(w0)])  # [2, out, in]: the input layer in factored form
        for lo in range(0, len(lams), chunk):
            part = lams[lo:lo + chunk]
            stack = lerp_stack(params_a, b, part)
            weights = torch.tensor([[1 - lam, lam] for lam in part], dtype=torch.float64)
            first = FirstLayer(basis, weights.to(w0.device))
            if repaired:
                stack, first = repair_stack(stack, target_stats(targets_src, weights), images, first)
            for name, (x, y) in splits:
                acc, loss = stacked_accuracy_and_loss(stack, x, y, config.batch_size, first)
                results[name][0].extend(acc.tolist())
                results[name][1].extend(loss.tolist())
        seconds = time.perf_counter() - t0
        for name, _ in splits:
            curves.append(Curve(method, repaired, name, lams, results[name][0], results[name][1], seconds))
    report(progress, "interpolate", len(variants), len(variants), "curves done")
    return curves
