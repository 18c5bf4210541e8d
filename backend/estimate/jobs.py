"""The estimates: a job's work units (cost.py) times seconds per unit (machine.py), per phase, plus a fixed
`overhead` per experiment (data loading, the report), as a total and a low..high range.

Each estimate is a range: measured rates give the spread of the recent measurements widened by
MEASURED_SPREAD; calibration and defaults give wide fixed factors (FALLBACK_SPREAD).

Jobs cache by key, so an estimate counts only the work a job will actually do: backend/stored_work.py says
what the store already holds (models by key, complete trees, evaluation rows, interpolation curves), each
phase prices only its units still to do (a stored tree still costs its evaluation when its nodes have no
results), and the estimate's "cached" says per phase how much was stored ({"train": {"done": 12, "total": 16,
"unit": "models"}, ...}); text.describe_range adds "12 of 16 models already stored". `cached=False` prices it
all.
"""

from __future__ import annotations

from backend.estimate.cost import (
    arch_key,
    connectivity_pairs,
    connectivity_units,
    eval_units,
    interpolation_units,
    layer_sizes,
    merge_units,
    merged_nodes,
    split_sizes,
    train_units,
    units_left,
)
from backend.estimate.machine import fallback_rates, measured_rate, train_fallback
from backend.merge.registry import STUDY_METHODS

FIXED_SECONDS = 5.0  # per job (worker start-up, data loading, report) until experiments measured it
MEASURED_SPREAD = (0.8, 1.25)  # widening of the measured rates' min..max
FALLBACK_SPREAD = {"calibrated": (0.6, 1.7), "default": (0.5, 3.0)}


def _device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _phase(phase: str, units: float, device: str, arch: str, fallback_seconds: float, fallback_source: str
           ) -> dict:
    """Seconds (and a low..high range) for `units` of `phase`: measured rates first, else the fallback."""
    if units <= 0:
        return {"seconds": 0.0, "low": 0.0, "high": 0.0, "source": "none"}
    m = measured_rate(phase, device, arch)
    if m is not None:
        lo, hi = MEASURED_SPREAD
        return {"seconds": units * m["rate"], "low": units * m["low"] * lo, "high": units * m["high"] * hi,
                "source": "measured"}
    lo, hi = FALLBACK_SPREAD[fallback_source]
    return {"seconds": fallback_seconds, "low": fallback_seconds * lo, "high": fallback_seconds * hi,
            "source": fallback_source}


def _overhead(device: str) -> dict:
    m = measured_rate("overhead", device)
    if m is None:
        return {"seconds": FIXED_SECONDS, "low": 0.0, "high": 4 * FIXED_SECONDS, "source": "default"}
    lo, hi = MEASURED_SPREAD
    return {"seconds": m["rate"], "low": m["low"] * lo, "high": m["high"] * hi, "source": "measured"}


def _combine(phases: dict, device: str, **extra) -> dict:
    sources = {p["source"] for p in phases.values() if p["source"] != "none"}
    source = "measured" if sources == {"measured"} else ("default" if "default" in sources - {"measured"}
                                                         or not sources else "calibrated")
    if sources and "measured" in sources and sources != {"measured"}:
        source = "partly measured"
    out = {"device": device, **{k: v["seconds"] for k, v in phases.items()},
           "total": sum(p["seconds"] for p in phases.values()),
           "low": sum(p["low"] for p in phases.values()), "high": sum(p["high"] for p in phases.values()),
           "phases": phases, "source": source, "calibrated": source != "default", **extra}
    return out


def _cached(**phases: tuple[int, int, str]) -> dict:
    """{phase: {"done", "total", "unit"}} for the phases a job has work in."""
    return {phase: {"done": min(int(done), int(total)), "total": int(total), "unit": unit}
            for phase, (done, total, unit) in phases.items() if total > 0}


def train_estimate(config, n_models: int, device: str | None = None, *, measure: bool = False, stored=None
                   ) -> dict:
    """Seconds to train `n_models` with a TrainConfig (see estimate_breakdown), less the `stored.models`
    already stored (a stored_work.Stored, or None)."""
    device = _device(device)
    n_train, n_test, _, _ = split_sizes(config.dataset)
    sizes = layer_sizes(config.dataset, config.widths)
    samples = min(config.train_subset or n_train, n_train)
    fb = fallback_rates(device, sizes, config.batch_size, measure)
    done = stored.models if stored is not None else 0
    todo = units_left(n_models, done)
    units = train_units(sizes, todo, config.epochs, samples)
    fallback = train_fallback(fb, todo, config.epochs, samples, n_test, config.batch_size)
    return _combine({"train": _phase("train", units, device, arch_key(sizes), fallback, fb["source"]),
                     "overhead": _overhead(device)}, device, cached=_cached(train=(done, n_models, "models")))


def merge_estimate(methods, n_leaves: int, dataset: str, widths, eval_config=None, device: str | None = None,
                   *, stored=None) -> dict:
    """Seconds to build one tree per method over n_leaves models, and to evaluate its nodes if asked; the
    complete trees and evaluated models in `stored` (a stored_work.Stored, or None) cost nothing."""
    device = _device(device)
    sizes = layer_sizes(dataset, widths)
    fb = fallback_rates(device, sizes, 512, False)
    done_trees = [(m, n) for m, n in (stored.trees if stored is not None else ()) if m in methods]
    units = max(sum(merge_units(m, n_leaves, widths) for m in methods)
                - sum(merge_units(m, n, widths) for m, n in done_trees), 0.0)
    phases = {"merge": _phase("merge", units, device, arch_key(sizes), units * fb["merge"], fb["source"])}
    cached = {"merge": (len(done_trees), len(methods), "trees")}
    if eval_config is not None:
        n_nodes = n_leaves + sum(merged_nodes(m, n_leaves) for m in methods)
        evaluated = stored.evaluated if stored is not None else 0
        phases["evaluate"] = _evaluate_phase(sizes, eval_config, units_left(n_nodes, evaluated), dataset, device, fb)
        cached["evaluate"] = (evaluated, n_nodes, "evaluations")
    return _combine({**phases, "overhead": _overhead(device)}, device, cached=_cached(**cached))


def _evaluate_phase(sizes, ev, n_models, dataset, device, fb) -> dict:
    _, n_test, _, _ = split_sizes(dataset)
    units = eval_units(sizes, ev, n_models, n_test)
    return _phase("evaluate", units, device, arch_key(sizes), units * fb["evaluate"], fb["source"])


def evaluate_estimate(n_models: int, dataset: str, widths, eval_config, device: str | None = None, *,
                      stored=None) -> dict:
    """Seconds to evaluate n_models of one architecture with an EvalConfig, less the `stored.evaluated` ones
    that already have its results."""
    device = _device(device)
    sizes = layer_sizes(dataset, widths)
    fb = fallback_rates(device, sizes, 512, False)
    done = stored.evaluated if stored is not None else 0
    todo = units_left(n_models, done)
    return _combine({"evaluate": _evaluate_phase(sizes, eval_config, todo, dataset, device, fb),
                     "overhead": _overhead(device)}, device,
                    cached=_cached(evaluate=(done, n_models, "evaluations")))


def estimate_breakdown(plan, device: str | None = None, *, measure: bool = True, cached: bool = True,
                       before=None) -> dict:
    """Seconds per phase (train, merge, evaluate, overhead), in total, and a low..high range, for an
    ExperimentPlan on `device`, counting only the work not already stored (cached=False: all of it; `before`:
    only what was stored before that naive-UTC time counts as stored). "cached" says how much was stored.

    Rates measured by earlier jobs on this machine come first; measure=False never times the machine (for
    page renders): without measurements it uses a cached calibration, else DEFAULT_RATES. "source" says
    which: measured, partly measured, calibrated or default ("calibrated" is True unless default).
    """
    device = _device(device)
    n_train, n_test, _, _ = split_sizes(plan.dataset)
    sizes = layer_sizes(plan.dataset, plan.widths)
    arch = arch_key(sizes)
    fb = fallback_rates(device, sizes, plan.batch_size, measure)
    stored = None
    if cached:
        from backend.stored_work import experiment_stored

        stored = experiment_stored(plan, before)
    if stored is None:
        from backend.stored_work import Stored

        stored = Stored()

    samples = min(plan.train_subset or n_train, n_train)
    t_todo = units_left(plan.n_trained, stored.models)
    t_units = train_units(sizes, t_todo, plan.epochs, samples)
    t_fallback = train_fallback(fb, t_todo, plan.epochs, samples, n_test, plan.batch_size)
    variants = len(getattr(plan, "variants", ()))  # extra hierarchical trees (REPAIR, activation matching)
    methods = STUDY_METHODS
    m_units = sum(merge_units(method, n, plan.widths) for _, n in plan.leaf_groups() for method in methods)
    m_units += variants * sum(merge_units("hierarchical", n, plan.widths) for _, n in plan.leaf_groups())
    m_units = max(m_units - sum(merge_units(method, n, plan.widths) for method, n in stored.trees), 0.0)
    n_trees = len(plan.leaf_groups()) * (len(methods) + variants)
    n_eval = plan.n_trained + sum(sum(merged_nodes(m, n) for m in methods) + variants * merged_nodes("hierarchical", n)
                                  for _, n in plan.leaf_groups())
    e_units = eval_units(sizes, plan.eval_config(), units_left(n_eval, stored.evaluated), n_test)
    c_forward, c_match = connectivity_units(plan, sizes, n_test, stored_pairs=stored.curves)
    m_units += c_match
    e_units += c_forward
    phases = {"train": _phase("train", t_units, device, arch, t_fallback, fb["source"]),
              "merge": _phase("merge", m_units, device, arch, m_units * fb["merge"], fb["source"]),
              "evaluate": _phase("evaluate", e_units, device, arch, e_units * fb["evaluate"], fb["source"]),
              "overhead": _overhead(device)}
    cached_work = _cached(train=(stored.models, plan.n_trained, "models"),
                          merge=(len(stored.trees), n_trees, "trees"),
                          evaluate=(stored.evaluated, n_eval, "evaluations"),
                          interpolate=(stored.curves, connectivity_pairs(plan), "curves"))
    return _combine(phases, device, n_trained=plan.n_trained, n_evaluated=n_eval,
                    interpolate_units=c_forward, evaluate_units=e_units, cached=cached_work)


def interpolate_estimate(n_pairs: int, dataset: str, widths, config: dict, device: str | None = None, *,
                         stored=None) -> dict:
    """Seconds to compute the interpolation curves of n_pairs model pairs of one architecture (less the
    `stored.curves` pairs that have them): the forward passes at the evaluation rate, the matchings at the merge
    rate (as estimate_breakdown counts them)."""
    device = _device(device)
    n_train, n_test, _, _ = split_sizes(dataset)
    sizes = layer_sizes(dataset, widths)
    arch = arch_key(sizes)
    fb = fallback_rates(device, sizes, 512, False)
    done = stored.curves if stored is not None else 0
    forward, match = interpolation_units(config, sizes, widths, units_left(n_pairs, done), n_test, n_train)
    return _combine({"evaluate": _phase("evaluate", forward, device, arch, forward * fb["evaluate"], fb["source"]),
                     "merge": _phase("merge", match, device, arch, match * fb["merge"], fb["source"]),
                     "overhead": _overhead(device)}, device, cached=_cached(interpolate=(done, n_pairs, "curves")))


def job_estimate(kind: str, spec: dict, device: str | None = None, *, before=None) -> dict | None:
    """The estimate of a recorded job (its kind and spec dict), or None when it cannot be made. Work the store
    already holds is not priced (stored before `before`, a naive-UTC time, when given: a running job's start)."""
    from backend import stored_work

    try:
        if kind == "experiment":
            from backend.experiment import plan_for

            return estimate_breakdown(plan_for(spec["preset"], spec.get("dataset"), spec.get("overrides")),
                                      device, measure=False, before=before)
        if kind == "train":
            from backend.train_config import TrainConfig

            train = _spec(kind, spec)
            return train_estimate(TrainConfig.from_dict(spec["train"]), int(spec["n_models"]), device,
                                  stored=None if train is None else stored_work.train_stored(train, before))
        if kind in ("merge", "evaluate"):
            from backend.evaluate.config import EvalConfig
            from store import models as store_models

            ids = spec["model_ids"]
            first = store_models.get_model(int(ids[0]))
            if first is None:
                return None
            widths = first["widths"]  # get_model decodes the JSON columns
            if kind == "merge":
                merge = _spec(kind, spec)
                ev = None if spec.get("evaluate") is None else EvalConfig.from_dict(dict(spec["evaluate"]))
                return merge_estimate(spec.get("methods", ()), len(ids), first["dataset"], widths, ev, device,
                                      stored=None if merge is None else stored_work.merge_stored(merge, before))
            eval_dict = dict(spec.get("eval") or {})
            return evaluate_estimate(len(ids), first["dataset"], widths, EvalConfig.from_dict(eval_dict), device,
                                     stored=stored_work.evaluate_stored(ids, eval_dict, before))
        if kind == "interpolate":
            return _interpolate_job_estimate(spec, device, before)
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    return None


def _spec(kind: str, spec: dict):
    """The job's spec object (what names its cached work), or None for a partial spec dict: then the whole job
    is priced."""
    from backend.jobs.spec import spec_from_dict

    try:
        return spec_from_dict({**spec, "kind": kind})
    except ValueError:
        return None


def _interpolate_job_estimate(spec: dict, device: str | None, before=None) -> dict | None:
    """An interpolate job's pairs (its own plus every two-parent node of its trees) priced as above."""
    from backend.stored_work import curves_stored
    from store import models as store_models
    from store import trees as store_trees
    from store.jsonutil import decoded

    pairs = [tuple(int(m) for m in p) for p in spec.get("pairs", [])]
    for tree_id in spec.get("tree_ids", []):
        nodes = store_trees.tree_nodes(int(tree_id))
        for parents in nodes["parents"] if not nodes.empty else []:
            parents = [int(m) for m in decoded(parents) or []]
            if len(parents) == 2 and tuple(parents) not in pairs:
                pairs.append((int(parents[0]), int(parents[1])))
    if not pairs:
        return None
    first = store_models.get_model(pairs[0][0])
    if first is None:
        return None
    config = spec.get("config") or {}
    return interpolate_estimate(len(pairs), first["dataset"], decoded(first["widths"]), config, device,
                                stored=curves_stored(pairs, config, before))
