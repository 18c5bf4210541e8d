"""`python -m backend store verify [--repair]`: check every model's weights file against its hash."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("store", help="check (and repair) the store's weights files",
                              description="Weights files are named by their SHA-256; verify reads every one "
                                          "the store points at and lists those missing or damaged.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="list models whose weights file is missing or damaged")
    verify.add_argument("--repair", action="store_true",
                        help="retrain damaged trained models (same config and seed) and rewrite their files")


def damaged_models() -> list[dict]:
    """Rows of models whose weights file is missing or does not hash to its name, with `problem` set."""
    from store import models as store_models
    from store.weights import verify_weights

    rows = []
    for row in store_models.list_models().to_dict("records"):
        problem = verify_weights(row["weights"])
        if problem is not None:
            rows.append({**row, "problem": problem})
    return rows


def repair_trained(row: dict) -> str:
    """Retrain one trained model from its stored config and seed; returns what happened."""
    from backend.train import TrainConfig, train_models
    from store import models as store_models
    from store.jsonutil import decoded
    from store.weights import save_weights

    config = TrainConfig.from_dict(decoded(row["config"], {}))
    (model,) = train_models(config, [int(row["seed"])])
    weights = save_weights(model.params)
    if weights == row["weights"]:
        return "restored (bit-identical retraining)"
    store_models.replace_weights(int(row["id"]), weights)
    return "retrained (new weights; its evaluations will be recomputed)"


def run(args: argparse.Namespace) -> int:
    from store.weights import weights_path

    bad = damaged_models()
    if not bad:
        print("all weights files are intact")
        return 0
    left = 0
    for row in bad:
        what = f"model {row['id']} ({row['kind']}): weights {row['problem']} at {weights_path(row['weights'])}"
        if not args.repair:
            print(what)
            continue
        if row["kind"] == "trained" and row.get("seed") is not None:
            print(f"{what} -> {repair_trained(row)}")
        else:
            left += 1
            print(f"{what} -> rerun the merge that built tree {row.get('tree_id')} (same command or "
                  f"`jobs run` of a copy): damaged nodes are recomputed")
    if args.repair:
        return 1 if left else 0
    print(f"{len(bad)} damaged; `python -m backend store verify --repair` fixes trained models")
    return 1
