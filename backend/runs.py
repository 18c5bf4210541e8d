"""The run table: one row per job with what it ran (config columns), how it went and where its results are.

Pure functions over store frames so the Runs page stays thin: `runs_table(jobs)` flattens each job's spec
into the columns a person filters and sorts by (dataset, widths, epochs, methods, λ, pairing, leaves,
eval config), `filter_runs` applies the page's filters and search, `result_targets` says which trees,
zoos, experiment and evaluation config a finished job's results live under, and `duration_seconds` /
`eta_seconds` say how long a job ran and how long a running one should still take.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from backend.leaves import widths_label
from store.jsonutil import decoded

COLUMNS = ["id", "kind", "name", "status", "progress", "dataset", "widths", "epochs", "n_models", "methods",
           "lam", "pairing", "leaves", "eval_config", "started", "duration_s", "cache_hits", "executor", "error"]
KIND_TITLES = {"train": "train zoo", "merge": "merge", "evaluate": "evaluate", "interpolate": "interpolate",
               "experiment": "experiment"}
METHOD_TITLES = {"hierarchical": "hierarchical", "merge_many": "MergeMany", "average": "naive average"}


def _json(value) -> dict:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return {}
    try:
        value = decoded(value, {})
    except ValueError:  # one damaged row must not break the whole Runs page
        return {"_unreadable": True}
    return dict(value) if isinstance(value, dict) else {}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def duration_seconds(started, finished=None) -> float | None:
    """Seconds from start to finish (to now while running); None before it started."""
    if started is None or pd.isna(started):
        return None
    end = finished if finished is not None and not pd.isna(finished) else _now()
    return max(0.0, (pd.Timestamp(end) - pd.Timestamp(started)).total_seconds())


def eval_label(config: dict | None, key: str | None = None) -> str | None:
    """'a1b2c3d4 · 300 test images': the evaluation config's key (what Compare lists; `key` when it is
    stored under one) and its test subset."""
    if config is None:
        return None
    from backend.evaluate.config import EvalConfig

    try:
        ev = EvalConfig.from_dict(dict(config))
    except (ValueError, TypeError):
        subset = dict(config).get("subset") if isinstance(config, dict) else None
        return f"{(key or '?')[:8]} · {subset or 'all'} test images"
    return f"{(key or ev.key())[:8]} · {ev.subset or 'all'} test images"


def _pairing(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else "custom"


def spec_columns(kind: str, spec: dict) -> dict:
    """The config columns of one job's spec (absent ones stay None)."""
    row: dict = {}
    if kind == "train":
        train = spec.get("train", {})
        row.update(name=spec.get("name"), dataset=train.get("dataset"),
                   widths=widths_label(train.get("widths", [])), epochs=train.get("epochs"),
                   n_models=spec.get("n_models"))
    elif kind == "merge":
        methods = spec.get("methods", [])
        row.update(name=" + ".join(METHOD_TITLES.get(m, m) for m in methods),
                   methods=", ".join(METHOD_TITLES.get(m, m) for m in methods),
                   lam=spec.get("lam") if "hierarchical" in methods else None,
                   pairing=_pairing(spec.get("pairing")) if "hierarchical" in methods else None,
                   leaves=len(spec.get("model_ids", [])), n_models=len(spec.get("model_ids", [])),
                   eval_config=eval_label(spec.get("evaluate")))
    elif kind == "evaluate":
        row.update(name=f"{len(spec.get('model_ids', []))} model(s)", n_models=len(spec.get("model_ids", [])),
                   eval_config=eval_label(spec.get("eval") or {}))
    elif kind == "interpolate":
        pairs, trees = spec.get("pairs", []), spec.get("tree_ids", [])
        row.update(name=", ".join([f"models {a} → {b}" for a, b in pairs] + [f"tree {t}" for t in trees]),
                   n_models=2 * len(pairs) or None)
    elif kind == "experiment":
        from backend.experiment import plan_for, trees_text

        try:
            plan = plan_for(spec.get("preset"), spec.get("dataset"), spec.get("overrides"))
        except (ValueError, TypeError):
            return {"name": f"preset {spec.get('preset')}"}
        row.update(name=f"preset {plan.preset}", dataset=plan.dataset, widths=widths_label(plan.widths),
                   epochs=plan.epochs, n_models=plan.n_trained, methods="hierarchical, MergeMany, naive average",
                   lam=plan.lam, pairing="as_listed", leaves=trees_text(plan.trees),
                   eval_config=eval_label(plan.eval))
    return row


def executor_label(spec: dict, result: dict) -> str:
    """Where a job ran: 'local', or 'ray · 2 nodes · 32 CPU, 2 GPU' (the cluster it found, from its result);
    before it finished, the executor its spec asks for ('ray · HOST:PORT')."""
    from backend.jobs.executors import describe_text

    if isinstance(result.get("executor"), dict):
        return describe_text(result["executor"])
    settings = spec.get("executor") if isinstance(spec.get("executor"), dict) else {"kind": "local"}
    return describe_text({"kind": settings.get("kind", "local"), "address": settings.get("address") or "cluster"})


def _text(value) -> str | None:
    """A text cell, or None for NULL (never NaN, which prints as 'nan')."""
    return value if isinstance(value, str) and value else None


def runs_table(jobs: pd.DataFrame, models: dict | None = None) -> pd.DataFrame:
    """store.jobs.list_jobs() -> one row per job with COLUMNS (newest first), plus spec/result as dicts.
    `models`: model id -> (dataset, widths label), so merge and evaluate jobs show what they worked on."""
    if jobs.empty:
        return pd.DataFrame(columns=[*COLUMNS, "spec", "result"])
    rows = []
    for job in jobs.to_dict("records"):
        spec, result = _json(job.get("spec")), _json(job.get("result"))
        kind = job["kind"]
        row = {c: None for c in COLUMNS}
        row.update(id=int(job["id"]), kind=KIND_TITLES.get(kind, kind), status=job["status"],
                   progress=float(job.get("progress") or 0.0), started=job.get("started_at"),
                   duration_s=duration_seconds(job.get("started_at"), job.get("finished_at")),
                   cache_hits=result.get("cache_hits"), error=_text(job.get("error")))
        row.update(spec_columns(kind, spec))
        row["executor"] = executor_label(spec, result)
        ids = spec.get("model_ids") or []
        if models and ids and row["dataset"] is None and int(ids[0]) in models:
            row["dataset"], row["widths"] = models[int(ids[0])]
        if spec.get("_unreadable"):
            row["name"] = "(unreadable spec)"
        row["spec"], row["result"], row["job_kind"] = spec, result, kind
        rows.append(row)
    out = pd.DataFrame(rows)
    out["started"] = pd.to_datetime(out["started"])
    return out.sort_values("id", ascending=False).reset_index(drop=True)


def filter_runs(table: pd.DataFrame, *, statuses=(), kinds=(), search: str = "") -> pd.DataFrame:
    """Rows with one of `statuses` and `kinds` (empty: all) whose text contains every word of `search`."""
    out = table
    if statuses:
        out = out[out["status"].isin(list(statuses))]
    if kinds:
        out = out[out["kind"].isin(list(kinds))]
    words = search.lower().split()
    if words:
        cols = [c for c in COLUMNS if c not in ("progress", "duration_s", "started")]
        text = pd.Series([" ".join(str(v) for v in row if v is not None and not (isinstance(v, float) and pd.isna(v)))
                          .lower() + f" #{row[0]}" for row in out[cols].itertuples(index=False)], index=out.index)
        for word in words:
            out = out[text.loc[out.index].str.contains(word, regex=False)]
    return out.reset_index(drop=True)


def result_targets(result: dict) -> dict:
    """Where a finished job's results live: {"trees": [...], "zoos": [...], "eval": key, "experiment": id}."""
    zoos = result.get("zoos") or ({"zoo": result["zoo_id"]} if "zoo_id" in result else {})
    return {"trees": [int(t) for t in result.get("tree_ids", [])], "zoos": [int(z) for z in zoos.values()],
            "eval": result.get("eval_key"), "experiment": result.get("experiment_id")}


def eta_seconds(elapsed: float | None, progress: float, estimate: float | None) -> float | None:
    """Seconds still to go: the job's estimate at first, then more and more the pace it measured.

    Before 2 % of the bar (or 20 s) only the estimate speaks (the pace of a few seconds says little);
    from there the weight of the measured pace, elapsed × (1 − p) / p, grows with progress and is
    complete at 20 %. The job's bar is split in proportion to estimated work, so the pace holds."""
    if elapsed is None:
        return None
    prior = None if estimate is None else max(estimate - elapsed, 0.0)
    if progress < 0.02 or elapsed < 20:
        return prior
    paced = elapsed * (1 - progress) / progress
    if prior is None:
        return paced
    w = min(1.0, progress / 0.2)
    return w * paced + (1 - w) * prior
