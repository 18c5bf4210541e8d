"""The evaluation protocol in one call: every metric an EvalConfig asks for, as long-format rows.

Dispatch: each metric's function is named in the catalogue (backend/metrics.py); this module only
picks the inputs, checks them and reports progress.

One row per (metric, param): e.g. ("fgsm_acc", 0.004, 0.71) or ("accuracy", None, 0.93). The store
saves these rows under the config's key, so every model evaluated with one config compares like with
like, and a rerun with the same config is a cache hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from backend.evaluate.config import EvalConfig
from backend.evaluate.inputs import check_inputs
from backend.metrics import METRICS, EvalRow
from backend.models import MLP, mlp_from_state_dict
from backend.progress import ProgressFn, report

ENSEMBLE_METRICS = tuple(name for name, m in METRICS.items() if m.logits_only)  # need only the logits


def _as_model(model: nn.Module | Mapping[str, Tensor], x: Tensor) -> nn.Module:
    if isinstance(model, Mapping):
        return mlp_from_state_dict(dict(model), in_shape=tuple(x.shape[1:]) if x.ndim == 4 else None)
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected a model or its state dict, got {type(model).__name__}")
    return model.eval()


def _take_subset(x: Tensor, y: Tensor, subset: int | None) -> tuple[Tensor, Tensor]:
    """The first `subset` samples in the split's fixed order (all of them when subset is None or larger)."""
    return (x, y) if subset is None else (x[:subset], y[:subset])


def _metric_rows(metric: str, model: nn.Module, x: Tensor, y: Tensor, config: EvalConfig) -> list[EvalRow]:
    """The catalogue's function for `metric` (backend/metrics.py)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    return METRICS[metric].function()(model, x, y, config)


def _run(model: nn.Module, x: Tensor, y: Tensor, config: EvalConfig, metrics: Sequence[str],
         progress: ProgressFn | None) -> list[EvalRow]:
    x = check_inputs(model, x, y)
    rows: list[EvalRow] = []
    for i, metric in enumerate(metrics):
        report(progress, "evaluate", i, len(metrics), f"{metric} on {x.shape[0]} samples")
        rows.extend(_metric_rows(metric, model, x, y, config))
    report(progress, "evaluate", len(metrics), len(metrics), "done")
    return rows


def evaluate_model(model: nn.Module | Mapping[str, Tensor], x: Tensor, y: Tensor, config: EvalConfig,
                   progress: ProgressFn | None = None) -> list[EvalRow]:
    """Run config.metrics on one MLP over the (subset of the) test split x [N, C, H, W] in [0, 1], y [N]."""
    if not isinstance(config, EvalConfig):
        raise ValueError(f"config must be an EvalConfig, got {type(config).__name__}")
    config.validate()
    model = _as_model(model, x)
    x, y = _take_subset(x, y, config.subset)
    needs_mlp = [m for m in config.metrics if not METRICS[m].logits_only]
    if needs_mlp and not isinstance(model, MLP):
        raise ValueError(f"metrics {needs_mlp} need a backend.models.MLP, got {type(model).__name__}")
    return _run(model, x, y, config, config.metrics, progress)


def evaluate_ensemble(models: Sequence[nn.Module | Mapping[str, Tensor]], x: Tensor, y: Tensor,
                      config: EvalConfig, progress: ProgressFn | None = None) -> list[EvalRow]:
    """The logit-only metrics (accuracy/loss, FGSM, noise) of the mean-of-logits ensemble of `models`.

    Metrics that need one MLP (DeepFool, weight norm, Lipschitz bounds: not `logits_only` in the catalogue)
    are left out here.
    """
    if not isinstance(config, EvalConfig):
        raise ValueError(f"config must be an EvalConfig, got {type(config).__name__}")
    config.validate()
    if len(models) == 0:
        raise ValueError("an ensemble needs at least one model")
    from backend.merge.ensemble import EnsembleModel

    model = EnsembleModel([_as_model(m, x) for m in models]).eval()
    x, y = _take_subset(x, y, config.subset)
    metrics = [m for m in config.metrics if m in ENSEMBLE_METRICS]
    return _run(model, x, y, config, metrics, progress)
