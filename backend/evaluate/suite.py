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


def _strong_rows(metric: str, model: nn.Module, x: Tensor, y: Tensor, config: EvalConfig) -> list[EvalRow]:
    """Strong attacks (pgd_*, apgd_*: upper bounds) and certification (certified_*: lower bounds)."""
    kind, p = metric.rsplit("_", 1)
    grid = config.deepfool_linf_eps if p == "linf" else config.deepfool_l2_eps
    bs = config.batch_size
    if kind == "certified":
        from backend.evaluate.certify import certified_l2_curve, certified_linf_curve

        small = min(bs, 64)  # CROWN's backward matrices are [batch, width, pixels]
        curve = (certified_linf_curve(model, x, y, grid, method=config.certify_method, batch_size=small)
                 if p == "linf" else certified_l2_curve(model, x, y, grid, batch_size=small))
    else:
        from backend.evaluate.strong import curve_from_first, median_perturbation, strong_search

        steps = config.pgd_steps if kind == "pgd" else config.apgd_steps
        result = strong_search(model, x, y, grid, attack=kind, norm=p, steps=steps,
                               restarts=config.attack_restarts, batch_size=bs, seed=config.attack_seed)
        curve = curve_from_first(result.first, grid)
        return [*(EvalRow(f"{metric}_acc", e, v) for e, v in zip(grid, curve, strict=True)),
                EvalRow(f"{metric}_median", None, median_perturbation(result))]
    return [EvalRow(f"{metric}_acc", e, v) for e, v in zip(grid, curve, strict=True)]


def _strong(metric: str):
    def rows(model: nn.Module, x: Tensor, y: Tensor, config: EvalConfig) -> list[EvalRow]:
        return _strong_rows(metric, model, x, y, config)

    rows.__name__ = f"{metric}_rows"
    return rows


# the catalogue's faces of the opt-in bounds (backend/metrics.py)
pgd_linf_rows, pgd_l2_rows = _strong("pgd_linf"), _strong("pgd_l2")
apgd_linf_rows, apgd_l2_rows = _strong("apgd_linf"), _strong("apgd_l2")
certified_linf_rows, certified_l2_rows = _strong("certified_linf"), _strong("certified_l2")


def sanity_tolerance(n: int) -> float:
    """Noise allowed between two attacks' robust accuracies on the same n samples: 1 point or 3 samples."""
    return max(0.01, 3.0 / n)


def sanity_rows(rows: Sequence[EvalRow], n: int) -> list[EvalRow]:
    """Warnings for a bracket that does not hold, one row per (check, ε) with the excess as value:

    - `sanity_strong_above_weak`: a strong attack's robust accuracy above FGSM's or DeepFool's by more than
      the noise (gradient masking, or a bug) — a strong attack should find at least what a weak one finds;
    - `sanity_certified_above_attacked`: certified accuracy above some attack's robust accuracy (impossible
      for a sound certificate on the same samples, so any excess is reported).
    """
    curves: dict[str, dict[float, float]] = {}
    for r in rows:
        if r.metric.endswith("_acc") and r.param is not None:
            curves.setdefault(r.metric, {})[round(float(r.param), 9)] = r.value
    tol = sanity_tolerance(n)
    out = []
    for p in ("linf", "l2"):
        weak = [c for name, c in curves.items() if name in (f"deepfool_{p}_acc", "fgsm_acc" if p == "linf" else "")]
        strong = [curves[f"{k}_{p}_acc"] for k in ("pgd", "apgd") if f"{k}_{p}_acc" in curves]
        certified = curves.get(f"certified_{p}_acc")
        attacked = weak + strong
        for eps in sorted({e for c in strong + ([certified] if certified else []) for e in c}):
            if strong and weak:
                excess = max(s[eps] for s in strong if eps in s) - min((w[eps] for w in weak if eps in w),
                                                                        default=float("inf"))
                if excess > tol:
                    out.append(EvalRow(f"sanity_strong_above_weak_{p}", eps, excess))
            if certified and eps in certified and attacked:
                excess = certified[eps] - min((a[eps] for a in attacked if eps in a), default=float("inf"))
                if excess > 1e-12:
                    out.append(EvalRow(f"sanity_certified_above_attacked_{p}", eps, excess))
    return out


def _run(model: nn.Module, x: Tensor, y: Tensor, config: EvalConfig, metrics: Sequence[str],
         progress: ProgressFn | None) -> list[EvalRow]:
    x = check_inputs(model, x, y)
    rows: list[EvalRow] = []
    for i, metric in enumerate(metrics):
        report(progress, "evaluate", i, len(metrics), f"{metric} on {x.shape[0]} samples")
        rows.extend(_metric_rows(metric, model, x, y, config))
    rows.extend(sanity_rows(rows, x.shape[0]))
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
