"""backend/estimate/ is four modules (cost, machine, jobs, text): the cost model and the text import without
torch, and the figures they make are pinned, so moving code between them cannot change an estimate. A
deliberate change to the cost model or the default rates updates FIGURES (and says so in its commit)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backend import estimate
from backend.evaluate.config import EvalConfig
from backend.experiment import PRESETS, plan_for

# estimate_breakdown(plan_for(preset), "cpu", measure=False, cached=False) on a fresh store (DEFAULT_RATES):
# train, merge, evaluate, overhead, low, high seconds
FIGURES = {
    "demo": (57.41768974336, 0.62511906816, 11.099426688, 5.0, 34.57111774976, 227.42670649856),
    "quick": (338.58219847679993, 11.63265048576, 96.587935488, 5.0, 223.40139222527995, 1360.4083533516798),
    "standard": (2204.901797888, 73.685532672, 859.5334425599999, 5.0, 1569.06038656, 9434.36231936),
    "explain": (71.77211217920001, 3.47892350976, 70.29369285119999, 5.0, 72.77236427008, 456.63418562048),
    "bracket": (71.77211217920001, 0.82896224256, 267.2673704064, 5.0, 169.93422241408, 1039.60533448448),
    "paper": (145481.64182016, 1389.1534848, 339693.748992, 5.0, 243282.27214848, 1459713.63289088),
}
PHASES = ("train", "merge", "evaluate", "overhead", "low", "high")


def test_cost_model_and_text_import_without_torch():
    code = ("import sys; import backend.estimate.cost as cost, backend.estimate.text as text; import backend.estimate; "
            "assert cost.merge_units('hierarchical', 4, (8, 6)) > 0 and cost.arch_key((4, 3)) == '4-3'; "
            "assert text.describe_range({'total': 6, 'low': 3, 'high': 9}) == 'about 6 s (3–9 s)'; "
            "heavy = [m for m in ('torch', 'numpy', 'scipy') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_preset_costs_what_it_did(lab_home):
    assert set(FIGURES) == set(PRESETS)
    for name, figures in FIGURES.items():
        est = estimate.estimate_breakdown(plan_for(name), "cpu", measure=False, cached=False)
        assert tuple(est[k] for k in PHASES) == pytest.approx(figures, rel=1e-12), name
        assert est["total"] == pytest.approx(sum(figures[:4]), rel=1e-12) and est["source"] == "default"


def test_single_job_estimates_cost_what_they_did(lab_home):
    ev = EvalConfig.from_dict(dict(plan_for("demo").eval))
    merge = estimate.merge_estimate(("hierarchical", "merge_many", "average"), 8, "fashion_mnist", [256, 128], ev,
                                    "cpu")
    assert (merge["merge"], merge["evaluate"], merge["low"], merge["high"]) == pytest.approx(
        (0.42127589376, 6.289675123199999, 3.3554755084799996, 40.13285305088), rel=1e-12)
    evaluate = estimate.evaluate_estimate(5, "fashion_mnist", [256, 128], ev, "cpu")
    assert (evaluate["evaluate"], evaluate["low"], evaluate["high"]) == pytest.approx(
        (1.849904448, 0.924952224, 25.549713344), rel=1e-12)
    curves = estimate.interpolate_estimate(3, "fashion_mnist", [256, 128], {"lam_grid": [0, 0.5, 1]}, "cpu")
    assert (curves["evaluate"], curves["merge"], curves["low"], curves["high"]) == pytest.approx(
        (1.80641664, 0.12230590464, 0.9643612723199999, 25.78616763392), rel=1e-12)
