"""`python -m backend evaluate`: run the evaluation protocol on stored models (cached per config)."""

from __future__ import annotations

import argparse

from backend.cli.common import add_eval_options, add_run_options, eval_config_from_args, int_list, run_spec


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate stored models",
                              description="Evaluate models under one evaluation config; models already "
                                          "evaluated under it are skipped.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--models", type=int_list, help="model ids, comma separated")
    which.add_argument("--zoo", type=int_list, help="every trained model of these zoos")
    which.add_argument("--tree", type=int_list, help="every node of these trees, leaves included")
    add_eval_options(p)
    add_run_options(p)


def resolve_models(args: argparse.Namespace) -> list[int]:
    from backend.jobs.merge_step import tree_model_ids
    from backend.jobs.train_step import zoo_model_ids

    if args.models:
        return list(args.models)
    groups = [zoo_model_ids(z) for z in args.zoo] if args.zoo else [tree_model_ids(t) for t in args.tree]
    ids = list(dict.fromkeys(i for group in groups for i in group))
    if not ids:
        raise ValueError("no models to evaluate there")
    return ids


def summary(model_ids: list[int], eval_key: str) -> str:
    """Per model: its merge level and method (kind: trained, hierarchical, merge_many, …), accuracy and the
    largest-eps FGSM accuracy when measured."""
    from store import evaluations as store_evals
    from store import models as store_models

    df = store_evals.evaluations(model_ids=model_ids, eval_key=eval_key)
    if df.empty:
        return "no evaluation rows"
    rows = df[df["metric"] == "accuracy"].set_index("model_id")[["value"]].rename(columns={"value": "accuracy"})
    info = store_models.list_models(ids=list(model_ids)).set_index("id")
    rows.insert(0, "method", info["kind"].reindex(rows.index))
    rows.insert(0, "level", info["level"].reindex(rows.index))
    for metric in ("fgsm_acc", "pgd_linf_acc", "apgd_linf_acc", "certified_linf_acc"):
        curve = df[df["metric"] == metric]
        if not curve.empty:
            top = curve[curve["param"] == curve["param"].max()]
            rows[f"{metric}@{top['param'].iloc[0]:g}"] = top.set_index("model_id")["value"]
    text = rows.round(4).to_string()
    warnings = df[df["metric"].str.startswith("sanity_")]
    for w in warnings.itertuples():
        what = ("strong attack weaker than FGSM/DeepFool (gradient masking or a bug?)"
                if "strong_above_weak" in w.metric else "certified above attacked accuracy (unsound bound?)")
        text += f"\nwarning: model {w.model_id}: {what} at eps {w.param:g} by {w.value:.3f}"
    return text


def run(args: argparse.Namespace) -> int:
    from backend.evaluate.config import EvalConfig
    from backend.jobs.spec import EvaluateSpec

    config = eval_config_from_args(args)
    ids = resolve_models(args)
    code, result = run_spec(EvaluateSpec(model_ids=tuple(ids), eval=config), args)
    if result:
        key = EvalConfig.from_dict(config).key()
        print(f"eval key {key}: {result['evaluated']} evaluated, {len(ids) - result['evaluated']} cached")
        print(summary(ids, key))
    return code
