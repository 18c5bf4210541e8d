"""The experiment job: run (or resume) an ExperimentSpec's plan (backend/experiment.py) — train the three zoos,
merge every leaf group with each study method (and the plan's variants), evaluate every model and node,
compute the plan's connectivity curves, then write the report. Every step goes through its step module
(backend/jobs/train_step.py, merge_step.py, evaluate_step.py, interpolate_step.py), each caching by key, so a
rerun recomputes nothing that finished."""

from __future__ import annotations

import dataclasses

from backend.experiment import METHODS, ExperimentPlan, spec_plan
from backend.progress import Cancelled


def zoo_specs(plan: ExperimentPlan) -> dict:
    """The plain, L1 and L2 zoos' TrainSpecs (their keys name the cached models; backend/stored_work.py)."""
    from backend.jobs.spec import TrainSpec

    base = f"{plan.preset}-{plan.dataset}"
    return {
        "plain": TrainSpec(name=f"{base}-plain", train=plan.train_dict("none"), n_models=plan.n_leaves,
                           base_seed=plan.seed, zoo_kind="plain"),
        "l1": TrainSpec(name=f"{base}-l1", train=plan.train_dict("l1"), n_models=plan.reg_models,
                        base_seed=plan.seed, zoo_kind="l1"),
        "l2": TrainSpec(name=f"{base}-l2", train=plan.train_dict("l2"), n_models=plan.reg_models,
                        base_seed=plan.seed, zoo_kind="l2"),
    }


def merge_specs(plan: ExperimentPlan, group: int, leaf_ids) -> list:
    """The MergeSpecs of leaf group `group` over its leaves: the study's methods, then one hierarchical tree per
    variant (their tree keys name the cached trees; backend/stored_work.py)."""
    from backend.jobs.spec import MergeSpec

    base = MergeSpec(model_ids=tuple(leaf_ids), methods=METHODS, lam=plan.lam, pairing="as_listed",
                     seed=plan.seed + group)
    return [base, *(dataclasses.replace(base, methods=("hierarchical",), **v) for v in plan.variants)]


def run_experiment(spec, ctx) -> dict:
    """Run (or resume) an ExperimentSpec: train, merge, evaluate, then write the report.

    The bar is split in proportion to the estimate of each phase (backend/estimate/), so progress
    moves at about the same speed throughout and the Runs page's ETA holds from the start; the message
    names the stage ("stage 1 of 4 · training plain zoo · model 3 of 12 · epoch 2/5"). Returns the result
    recorded on the experiment row. The time since the job started (worker start-up included) not covered by
    the steps' own measurements is recorded as this machine's per-experiment overhead, so an estimate from
    recorded rates adds up to the duration the Runs table shows.
    """
    import time

    from backend.estimate import estimate_breakdown, merge_units
    from backend.jobs import evaluate_step, interpolate_step, merge_step, step_common, train_step
    from store import experiments as store_exps
    from store import trees as store_trees
    from store.jobs import JobStatus

    t_start = time.perf_counter() - ctx.seconds_since_start()  # the job's start: worker start-up counts too
    plan = spec_plan(spec)
    eval_config = plan.eval_config()
    est = estimate_breakdown(plan, measure=False)
    phase_seconds = [max(est[p], 1e-3 * max(est["total"], 1.0)) for p in ("train", "merge", "evaluate")]
    phase_seconds.append(max(est["overhead"], 0.01 * sum(phase_seconds)))
    edges = [sum(phase_seconds[:i]) / sum(phase_seconds) for i in range(5)]  # train | merge | evaluate | report
    exp_id = store_exps.create_experiment(f"{plan.preset} · {plan.dataset}", plan.preset, plan.dataset,
                                          spec.to_dict(), spec.key())
    store_exps.update_experiment(exp_id, status=JobStatus.RUNNING, job_id=ctx.job_id)
    measured_before = ctx.measured_seconds
    try:
        zoos = zoo_specs(plan)
        weights = {k: s.n_models for k, s in zoos.items()}
        total, done, zoo_ids = sum(weights.values()), 0, {}
        titles = {"plain": "plain zoo", "l1": "L1 zoo", "l2": "L2 zoo"}
        for kind, zspec in zoos.items():
            lo = edges[0] + (edges[1] - edges[0]) * done / total
            hi = edges[0] + (edges[1] - edges[0]) * (done + weights[kind]) / total
            ctx.span(lo, hi)
            with ctx.section(f"stage 1 of 4 · training {titles[kind]}"):
                ctx.update(lo, "train", f"{zspec.n_models} models", force=True)
                zoo_ids[kind] = train_step.train_zoo(zspec, ctx)
            done += weights[kind]
        leaves = train_step.zoo_model_ids(zoo_ids["plain"])
        groups, leaf_groups = [], plan.leaf_groups()
        group_work = [sum(merge_units(m, n, plan.widths) for m in METHODS)
                      + len(plan.variants) * merge_units("hierarchical", n, plan.widths) for _, n in leaf_groups]
        for g, (start, n) in enumerate(leaf_groups):
            lo = edges[1] + (edges[2] - edges[1]) * sum(group_work[:g]) / sum(group_work)
            hi = edges[1] + (edges[2] - edges[1]) * sum(group_work[:g + 1]) / sum(group_work)
            ctx.span(lo, hi)
            # the group's slice: the study's methods, then one hierarchical tree per variant, by their work
            cut = lo + (hi - lo) * (1 - len(plan.variants) * merge_units("hierarchical", n, plan.widths)
                                    / max(group_work[g], 1e-9))
            with ctx.section(f"stage 2 of 4 · merging · tree {g + 1} of {len(leaf_groups)} ({n} leaves)"):
                ctx.span(lo, cut)
                ctx.update(lo, "merge", force=True)
                mspec, *variant_specs = merge_specs(plan, g, leaves[start:start + n])
                tree_ids = merge_step.build_merges(mspec, ctx)
                variant_trees = []
                for v_index, v in enumerate(plan.variants):
                    step = (hi - cut) / len(plan.variants)
                    ctx.span(cut + v_index * step, cut + (v_index + 1) * step)
                    with ctx.section(f"variant {v_index + 1} of {len(plan.variants)}"):
                        tree = merge_step.build_merges(variant_specs[v_index], ctx)
                    variant_trees.append({"options": dict(v), "tree_id": int(tree[0])})
            by_method = {store_trees.get_tree(t)["method"]: int(t) for t in tree_ids}
            groups.append({"pair": g, "leaves": n, "leaf_ids": leaves[start:start + n], "trees": by_method,
                           "variants": variant_trees})
        variant_ids = [v["tree_id"] for grp in groups for v in grp["variants"]]
        model_ids = sorted({m for z in zoo_ids.values() for m in train_step.zoo_model_ids(z)}
                           | {m for grp in groups for t in grp["trees"].values()
                              for m in merge_step.tree_model_ids(t)}
                           | {m for t in variant_ids for m in merge_step.tree_model_ids(t)})
        # the evaluate stage's span, split between evaluation and the interpolation curves by their work
        split = est["evaluate_units"] - est["interpolate_units"]
        mid = edges[2] + (edges[3] - edges[2]) * split / max(est["evaluate_units"], 1e-9)
        ctx.span(edges[2], mid)
        with ctx.section(f"stage 3 of 4 · evaluating {len(model_ids)} models"):
            ctx.update(edges[2], "evaluate", force=True)
            evaluate_step.evaluate_models(model_ids, eval_config, ctx)
        curve_key = None
        if plan.connectivity is not None:  # barriers of every hierarchical node's parents (variants too)
            from backend.jobs.spec import InterpolateSpec

            ctx.span(mid, edges[3])
            with ctx.section("stage 3 of 4 · interpolating the parents of every merged node"):
                ctx.update(mid, "interpolate", force=True)
                hier = [grp["trees"]["hierarchical"] for grp in groups if "hierarchical" in grp["trees"]]
                ispec = InterpolateSpec(tree_ids=tuple(hier + variant_ids), config=dict(plan.connectivity))
                curve_key = interpolate_step.interpolate_pairs(ispec, ctx)["curve_key"]
        result = {"experiment_id": exp_id, "plan": plan.to_dict(), "eval_key": eval_config.key(),
                  "eval": eval_config.to_dict(), "zoos": zoo_ids, "groups": groups,
                  "tree_ids": [t for grp in groups for t in grp["trees"].values()], "n_models": len(model_ids),
                  "variant_tree_ids": variant_ids, "curve_key": curve_key}
        store_exps.update_experiment(exp_id, result=result)
        ctx.span(edges[3], 1.0)
        with ctx.section("stage 4 of 4 · writing the report"):
            ctx.update(edges[3], "report", "figures and tables", force=True)
            from backend.report_files import default_report_path, write_report

            path = write_report(exp_id, default_report_path(exp_id))
        store_exps.update_experiment(exp_id, status=JobStatus.DONE, report_path=str(path))
        ctx.update(1.0, "done", f"report at {path}", force=True)
        overhead = time.perf_counter() - t_start - (ctx.measured_seconds - measured_before)
        step_common.record_work(ctx, "overhead", "experiment", 1.0, overhead)
        return {**{k: result[k] for k in ("experiment_id", "zoos", "tree_ids", "eval_key")},
                "report_path": str(path)}
    except Cancelled:
        store_exps.update_experiment(exp_id, status=JobStatus.CANCELLED)
        raise
    except BaseException:
        store_exps.update_experiment(exp_id, status=JobStatus.FAILED)
        raise
