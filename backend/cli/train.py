"""`python -m backend train`: train a zoo of MLPs (one seed per model) and store every model."""

from __future__ import annotations

import argparse

from backend.cli.common import add_run_options, int_list, positive_int, run_spec


def register(subparsers) -> None:
    from backend.datasets import DATASETS

    p = subparsers.add_parser("train", help="train a zoo of MLPs",
                              description="Train N seeded MLPs of one config into a zoo. Models already "
                                          "stored for this config are reused, so a rerun resumes.")
    p.add_argument("--dataset", default="cifar10", choices=DATASETS)
    p.add_argument("--n", type=positive_int, default=4, help="number of models (seeds)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--widths", type=int_list, default=(512, 512, 512, 256),
                   help="hidden widths, comma separated (default 512,512,512,256)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--batch-size", type=positive_int, default=512)
    p.add_argument("--reg", choices=("none", "l1", "l2"), default="none", help="weight penalty")
    p.add_argument("--reg-strength", type=float, default=0.0)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop + flip (default: on for CIFAR-10 only)")
    p.add_argument("--train-subset", type=positive_int, default=None,
                   help="train on the first N training samples (default: the whole split)")
    p.add_argument("--seed", type=int, default=0, help="base seed; model seeds are derived from it")
    p.add_argument("--name", default=None, help="zoo name (default: dataset-reg-N)")
    p.add_argument("--curve-every", type=positive_int, default=None, metavar="N",
                   help="also record a training-curve point (loss and accuracy over the last N steps) every N "
                        "training steps (default: one point per epoch only)")
    add_run_options(p)


def run(args: argparse.Namespace) -> int:
    from backend.jobs.spec import TrainSpec

    train = {"dataset": args.dataset, "widths": list(args.widths), "epochs": args.epochs,
             "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr,
             "momentum": args.momentum, "reg": args.reg, "reg_strength": args.reg_strength,
             "augment": args.augment, "train_subset": args.train_subset}
    name = args.name or f"{args.dataset}-{args.reg}-{args.n}"
    spec = TrainSpec(name=name, train=train, n_models=args.n, base_seed=args.seed,
                     zoo_kind="plain" if args.reg == "none" else args.reg, curve_every=args.curve_every)
    code, result = run_spec(spec, args)
    if result:
        print(f"zoo {result['zoo_id']}")
        print(f"models {','.join(map(str, result['model_ids']))}")
    return code
