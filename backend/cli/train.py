"""`python -m backend train`: train a zoo of MLPs (one seed per model) and store every model.

Its options are derived from the declarations of TrainConfig (backend/train_config.py) and TrainSpec's
name, n_models and base_seed (backend/jobs/spec.py): a new training option is one declared field."""

from __future__ import annotations

import argparse

from backend.cli.common import add_run_options, run_spec


def register(subparsers) -> None:
    from backend.jobs.spec import TrainSpec
    from backend.options import add_arguments
    from backend.train_config import TrainConfig

    p = subparsers.add_parser("train", help="train a zoo of MLPs",
                              description="Train N seeded MLPs of one config into a zoo. Models already "
                                          "stored for this config are reused, so a rerun resumes.")
    add_arguments(p, TrainConfig)
    add_arguments(p, TrainSpec)
    add_run_options(p)


def run(args: argparse.Namespace) -> int:
    from backend.jobs.spec import TrainSpec
    from backend.options import declared_field, values_from_args
    from backend.train_config import TrainConfig

    config = TrainConfig(**values_from_args(args, TrainConfig))
    zoo = values_from_args(args, TrainSpec)
    zoo.setdefault("n_models", declared_field(TrainSpec, "n_models").default)
    zoo.setdefault("name", f"{config.dataset}-{config.reg}-{zoo['n_models']}")
    spec = TrainSpec(train=config.to_dict(), zoo_kind="plain" if config.reg == "none" else config.reg, **zoo)
    code, result = run_spec(spec, args)
    if result:
        print(f"zoo {result['zoo_id']}")
        print(f"models {','.join(map(str, result['model_ids']))}")
    return code
