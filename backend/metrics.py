"""The metric catalogue: every evaluation metric declared once (torch-free, on the backend's ground floor).

A *metric* is what an EvalConfig asks for by name ("fgsm"); it runs one function and stores one or more
*rows* ("fgsm_acc" at every ε of the grid). For each metric: its config name, label, version, the
function that computes it ("module:function", imported only when it runs), and its stored rows; for each
row: title, unit, and, for a curve, the grid (the EvalConfig field holding its parameter values) and the
parameter's axis title. The evaluation suite dispatches from here; labels, tables, charts, Compare, the report,
the CLI's grid options and the evaluation widgets read titles, units and grids from here.

Versions: bump a metric's `version` when its numbers change; the version (when above 1) enters the
evaluation key of every EvalConfig that asks for the metric, so exactly those evaluations are recomputed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

ACCURACY_UNIT = "share correct (0–1)"


class EvalRow(NamedTuple):
    """One stored result: e.g. ("fgsm_acc", 0.004, 0.71) or ("accuracy", None, 0.93)."""

    metric: str
    param: float | None
    value: float


def _load(where: str) -> Callable:
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Row:
    """A stored row name: what a chart or table calls it."""

    name: str  # the `metric` column of stored evaluations
    title: str  # "FGSM robust accuracy"
    unit: str  # y axis / table unit
    family: str = "accuracy"  # accuracy | adversarial | noise | weights: the Compare tab it belongs to
    grid: str | None = None  # curve rows: the EvalConfig field of the parameter grid; None = a scalar row
    param: str | None = None  # curve rows: the parameter, "FGSM ε"
    norm: str | None = None  # curve rows: the norm of the budget, "L∞" (None for σ)
    param_unit: str = "pixel units"
    symbol: str | None = None  # curve rows: the grid's name in forms and messages ("FGSM ε", "noise σ")
    short_unit: str | None = None  # the unit in table headers ("share"); None = `unit`
    param_symbol: str | None = None  # the parameter in table headers ("ε", "σ", "r"); None = from `param`

    @property
    def header_unit(self) -> str:
        return self.short_unit or ("share" if self.unit == ACCURACY_UNIT else self.unit)

    @property
    def header_param(self) -> str:
        return self.param_symbol or (str(self.param).split()[-1] if self.param else "param")
    compared: bool = True  # scalar rows drawn per level and paired in the report (False: a spread, e.g. std)
    source: str = "evaluation"  # evaluation (a metric's row) | connectivity (a barrier of interpolation curves)
    bound: str | None = None  # robust-accuracy curves: "upper" (an attack) or "lower" (certified): the bracket

    @property
    def curve(self) -> bool:
        return self.grid is not None

    @property
    def budget(self) -> str:
        """Short name of a curve's parameter: "FGSM ε (L∞)", "Gaussian noise σ"."""
        return f"{self.param} ({self.norm})" if self.norm else str(self.param)

    @property
    def axis(self) -> str:
        """Axis title of a curve's parameter: "FGSM ε (L∞, pixel units)"."""
        return f"{self.param} ({', '.join(p for p in (self.norm, self.param_unit) if p)})"

    @property
    def curve_title(self) -> str:
        """A curve chart's title without repeating the axis name: "FGSM robust accuracy vs ε"."""
        return f"{self.title} vs {str(self.param).split()[-1]}"


@dataclass(frozen=True)
class Metric:
    """A metric an EvalConfig can ask for."""

    name: str  # the EvalConfig `metrics` entry
    label: str  # picker label
    rows: tuple[Row, ...]
    run: str  # "module:function" with (model, x, y, config) -> list[EvalRow]
    version: int = 1
    logits_only: bool = False  # needs only the logits (any nn.Module will do, not only an MLP)
    stacked: str | None = None  # "module:function" (stack, x, y, config) -> rows per model; None = model by model
    default: bool = True  # part of the default protocol (EvalConfig's default metrics); False = opt-in
    description: str = ""

    def function(self) -> Callable:
        return _load(self.run)

    def stacked_function(self) -> Callable | None:
        return None if self.stacked is None else _load(self.stacked)

    @property
    def grid(self) -> str | None:
        """The EvalConfig field of this metric's parameter grid (None for a metric without curves)."""
        return next((r.grid for r in self.rows if r.grid), None)


_LIP_UNIT, _LIP_SHORT = "upper bound (L2, pixel space)", "L2, pixel space"
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", "Accuracy and loss", (
        Row("accuracy", "Test accuracy", ACCURACY_UNIT),
        Row("loss", "Test loss (cross-entropy)", "cross-entropy (nats)", family="adversarial",
            short_unit="nats"),
    ), "backend.evaluate.accuracy:accuracy_rows", logits_only=True,
       stacked="backend.evaluate.stacked:_rows_accuracy"),
    Metric("fgsm", "FGSM", (
        Row("fgsm_acc", "FGSM robust accuracy", ACCURACY_UNIT, "adversarial", "fgsm_eps", "FGSM ε", "L∞",
            symbol="FGSM ε", bound="upper"),
    ), "backend.evaluate.fgsm:fgsm_rows", logits_only=True, stacked="backend.evaluate.stacked:_rows_fgsm"),
    Metric("deepfool_linf", "DeepFool L∞", (
        Row("deepfool_linf_acc", "DeepFool L∞ robust accuracy", ACCURACY_UNIT, "adversarial", "deepfool_linf_eps",
            "DeepFool ε", "L∞", symbol="DeepFool L∞ ε", bound="upper"),
        Row("deepfool_linf_median", "DeepFool L∞ median perturbation", "L∞ distance (pixel units)", "adversarial",
            short_unit="L∞, pixel units"),
    ), "backend.evaluate.deepfool:deepfool_linf_rows",
       stacked="backend.evaluate.stacked:_rows_deepfool_linf"),
    Metric("deepfool_l2", "DeepFool L2", (
        Row("deepfool_l2_acc", "DeepFool L2 robust accuracy", ACCURACY_UNIT, "adversarial", "deepfool_l2_eps",
            "DeepFool ε", "L2", symbol="DeepFool L2 ε", bound="upper"),
        Row("deepfool_l2_median", "DeepFool L2 median perturbation", "L2 distance (pixel units)", "adversarial",
            short_unit="L2, pixel units"),
    ), "backend.evaluate.deepfool:deepfool_l2_rows",
       stacked="backend.evaluate.stacked:_rows_deepfool_l2"),
    Metric("noise", "Gaussian noise", (
        Row("noise_acc", "Accuracy under Gaussian noise", ACCURACY_UNIT, "noise", "noise_sigma", "Gaussian noise σ",
            symbol="noise σ"),
    ), "backend.evaluate.noise:noise_rows", logits_only=True, stacked="backend.evaluate.stacked:_rows_noise"),
    Metric("weight_norm", "Weight norm", (
        Row("weight_norm", "Weight norm Σ‖W‖_F + ‖b‖₂", "Σ‖W‖_F + ‖b‖₂", "weights"),
    ), "backend.evaluate.norms:weight_norm_rows"),
    Metric("lipschitz_global", "Global Lipschitz bound", (
        Row("lipschitz_global", "Global Lipschitz bound Π‖W‖₂", _LIP_UNIT, "weights", short_unit=_LIP_SHORT),
    ), "backend.evaluate.lipschitz:global_lipschitz_rows"),
    Metric("lipschitz_local", "Local Lipschitz bound", (
        Row("lipschitz_local_mean", "Local Lipschitz bound (mean over points)", _LIP_UNIT, "weights", short_unit=_LIP_SHORT,
            param_symbol="r"),
        Row("lipschitz_local_std", "Local Lipschitz bound (std over points)", _LIP_UNIT, "weights", compared=False,
            short_unit=_LIP_SHORT, param_symbol="r"),
    ), "backend.evaluate.lipschitz:local_lipschitz_rows"),
    # Strong attacks (upper bounds on robust accuracy) and certification (lower bounds): opt-in, on the DeepFool
    # grids so each bracket lines up with DeepFool's curve (backend/evaluate/{pgd,apgd,strong,certify}.py).
    Metric("pgd_linf", "PGD L∞", (
        Row("pgd_linf_acc", "PGD L∞ robust accuracy", ACCURACY_UNIT, "adversarial", "deepfool_linf_eps", "PGD ε",
            "L∞", symbol="DeepFool L∞ ε", bound="upper"),
        Row("pgd_linf_median", "PGD L∞ median perturbation (upper bound)", "L∞ distance (pixel units)",
            "adversarial", short_unit="L∞, pixel units"),
    ), "backend.evaluate.suite:pgd_linf_rows", logits_only=True, default=False, version=2),
    Metric("pgd_l2", "PGD L2", (
        Row("pgd_l2_acc", "PGD L2 robust accuracy", ACCURACY_UNIT, "adversarial", "deepfool_l2_eps", "PGD ε", "L2",
            symbol="DeepFool L2 ε", bound="upper"),
        Row("pgd_l2_median", "PGD L2 median perturbation (upper bound)", "L2 distance (pixel units)",
            "adversarial", short_unit="L2, pixel units"),
    ), "backend.evaluate.suite:pgd_l2_rows", logits_only=True, default=False, version=2),
    Metric("apgd_linf", "APGD L∞ (CE + DLR)", (
        Row("apgd_linf_acc", "APGD L∞ robust accuracy", ACCURACY_UNIT, "adversarial", "deepfool_linf_eps",
            "APGD ε", "L∞", symbol="DeepFool L∞ ε", bound="upper"),
        Row("apgd_linf_median", "APGD L∞ median perturbation (upper bound)", "L∞ distance (pixel units)",
            "adversarial", short_unit="L∞, pixel units"),
    ), "backend.evaluate.suite:apgd_linf_rows", logits_only=True, default=False, version=2),
    Metric("apgd_l2", "APGD L2 (CE + DLR)", (
        Row("apgd_l2_acc", "APGD L2 robust accuracy", ACCURACY_UNIT, "adversarial", "deepfool_l2_eps", "APGD ε",
            "L2", symbol="DeepFool L2 ε", bound="upper"),
        Row("apgd_l2_median", "APGD L2 median perturbation (upper bound)", "L2 distance (pixel units)",
            "adversarial", short_unit="L2, pixel units"),
    ), "backend.evaluate.suite:apgd_l2_rows", logits_only=True, default=False, version=2),
    Metric("certified_linf", "Certified L∞ (IBP/CROWN)", (
        Row("certified_linf_acc", "Certified L∞ accuracy", ACCURACY_UNIT, "adversarial", "deepfool_linf_eps",
            "Certified ε", "L∞", symbol="DeepFool L∞ ε", bound="lower"),
    ), "backend.evaluate.suite:certified_linf_rows", default=False),
    Metric("certified_l2", "Certified L2 (Lipschitz)", (
        Row("certified_l2_acc", "Certified L2 accuracy", ACCURACY_UNIT, "adversarial", "deepfool_l2_eps",
            "Certified ε", "L2", symbol="DeepFool L2 ε", bound="lower"),
    ), "backend.evaluate.suite:certified_l2_rows", default=False),
)}

# Rows that are not evaluation metrics but are drawn and tabled like them: barriers of interpolation curves
# (backend/connectivity.py, store/curves.py), per merged node against its parents.
CONNECTIVITY_ROWS = (
    Row("loss_barrier", "Loss barrier between the parents", "cross-entropy above the chord", "connectivity",
        source="connectivity"),
    Row("accuracy_barrier", "Accuracy barrier between the parents", "accuracy below the chord", "connectivity",
        source="connectivity"),
)

# Warnings the suite adds when a bound bracket does not hold (backend.evaluate.suite.sanity_rows), per ε.
SANITY_ROWS = tuple(
    Row(f"sanity_{check}_{p}", f"{what} ({norm})", "excess (share of samples)", "adversarial", source="sanity")
    for check, what in (("strong_above_weak", "Strong attack weaker than FGSM/DeepFool"),
                        ("certified_above_attacked", "Certified above attacked accuracy"))
    for p, norm in (("linf", "L∞"), ("l2", "L2")))

ALL_METRICS = tuple(name for name, m in METRICS.items() if m.default)  # the default protocol
KNOWN_METRICS = tuple(METRICS)  # every metric an EvalConfig may ask for
ROWS: dict[str, Row] = ({r.name: r for m in METRICS.values() for r in m.rows}
                        | {r.name: r for r in (*CONNECTIVITY_ROWS, *SANITY_ROWS)})
ROW_METRIC: dict[str, str] = {r.name: m.name for m in METRICS.values() for r in m.rows}  # row -> its metric
CURVE_ROWS = tuple(name for name, r in ROWS.items() if r.curve)  # default and opt-in metrics alike
SCALAR_ROWS = tuple(name for name, r in ROWS.items()  # evaluation scalars drawn per level
                    if not r.curve and r.compared and r.source == "evaluation")
GRIDS = tuple(dict.fromkeys(m.grid for m in METRICS.values() if m.grid))  # EvalConfig grid fields


def grid_rows() -> dict[str, Row]:
    """Each EvalConfig parameter grid once, with the first curve row that uses it (for its labels)."""
    out: dict[str, Row] = {}
    for row in ROWS.values():
        if row.curve and row.grid not in out:
            out[row.grid] = row
    return out


def title(row: str) -> str:
    """A stored row's title (the name itself for a row not in the catalogue)."""
    return ROWS[row].title if row in ROWS else row


def unit(row: str) -> str:
    return ROWS[row].unit if row in ROWS else "value"


def axis(row: str) -> str:
    """The parameter axis title of a curve row ("parameter" for anything else)."""
    return ROWS[row].axis if row in ROWS and ROWS[row].curve else "parameter"


def family_rows(family: str, *, curves: bool | None = None) -> list[str]:
    """Row names of one family in catalogue order; curves=True/False keeps only curves/scalars."""
    return [n for n, r in ROWS.items() if r.family == family and r.compared and (curves is None or r.curve == curves)]


def versions(metrics: Iterable[str]) -> dict[str, int]:
    """The versions of `metrics` that are above 1 (what enters an evaluation key)."""
    return {m: METRICS[m].version for m in metrics if m in METRICS and METRICS[m].version != 1}
