"""Bad inputs are refused with one sentence before any heavy work: experiment overrides of the wrong type
or range, zoos too large, widths that would exhaust memory, ε/σ grids beyond any pixel budget."""

from __future__ import annotations

import json

import pytest

from backend.evaluate.config import EvalConfig
from backend.experiment import plan_for
from backend.jobs.spec import TrainSpec
from backend.train import TrainConfig


@pytest.mark.parametrize("overrides, words", [
    ({"epochs": "abc"}, "epochs must be a positive integer"),
    ({"trees": 5}, "trees must be a list"),
    ({"eval": 5}, "eval must be a JSON object"),
    ({"lam": 7}, "lam must be a number in [0, 1]"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"widths": [100_000_000]}, "at most 16384 units"),
    ({"widths": [8192, 8192, 8192]}, "parameters per model"),
    ({"eval": {"fgsm_eps": [5]}}, "meaningful pixel budget"),
    ({"trees": [[2000, 8]]}, "at most 10,000"),
    ({"dataset": "mnist"}, "--dataset"),
])
def test_experiment_overrides_are_validated_as_a_whole(overrides, words, capsys):
    with pytest.raises(ValueError) as err:
        plan_for("demo", "fashion_mnist", overrides)
    assert words in str(err.value) and "\n" not in str(err.value)
    from backend.cli import main

    assert main(["experiment", "--overrides", json.dumps(overrides), "--estimate",
                 "--dataset", "fashion_mnist"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]


def test_zoo_size_and_widths_are_bounded_before_any_work():
    with pytest.raises(ValueError, match="at most 10,000 models"):
        TrainSpec(name="big", train={"dataset": "fashion_mnist", "widths": [8]}, n_models=200_000).validate()
    with pytest.raises(ValueError, match="at most 16384 units"):
        TrainConfig(dataset="fashion_mnist", widths=(2**31,))
    TrainConfig(dataset="cifar10", widths=(512, 512, 512, 256))  # the paper's MLP stays allowed


def test_grids_beyond_pixel_budgets_are_refused():
    with pytest.raises(ValueError, match="noise_sigma goes beyond"):
        EvalConfig(noise_sigma=(0.0, 3.0))
    with pytest.raises(ValueError, match="deepfool_l2_eps goes beyond"):
        EvalConfig(deepfool_l2_eps=(0.0, 1000.0))
    with pytest.raises(ValueError, match="more than 400 points"):
        EvalConfig(fgsm_eps=tuple(i / 1000 for i in range(401)))
    EvalConfig()  # the protocol's defaults stay valid
