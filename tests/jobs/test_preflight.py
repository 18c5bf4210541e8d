"""Every job kind checks its whole input before it writes anything: unknown ids, mixed widths or datasets, a
damaged leaf, an incomplete tree, an offline dataset give one `error:` line and a non-zero exit (CLI) or one
ValueError (what the UI shows), and leave every table's row count and every file in the store as they were."""

from __future__ import annotations

import os

import pytest

from backend.cli import main
from backend.jobs import queue
from backend.jobs.preflight import InputError, check_inputs
from backend.jobs.spec import EvaluateSpec, ExperimentSpec, InterpolateSpec, MergeSpec, TrainSpec
from store import models as store_models
from store import trees as store_trees
from store import weights as store_weights
from store.db import connect
from store.paths import home_dir

TABLES = ("jobs", "zoos", "models", "trees", "merges", "eval_configs", "evaluations", "experiments",
          "curve_configs", "curves", "train_curves")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No network: a dataset not on this machine is 'missing' (the tests' data dir is empty)."""
    import backend.data

    monkeypatch.setattr(backend.data, "_host_reachable", lambda url, timeout=1.5: False)


@pytest.fixture
def stored(make_tiny_params):
    """Two fashion_mnist models of one shape, one of other widths, one of another dataset, an incomplete tree."""
    def add(seed, widths=(8, 6), dataset="fashion_mnist", params=None):
        weights = store_weights.save_weights(params or make_tiny_params(seed))
        return store_models.add_model(kind="trained", dataset=dataset, widths=list(widths), config={},
                                      weights=weights, key=f"m{seed}", seed=seed)

    from backend.models import MLPConfig

    other = MLPConfig(in_shape=(1, 4, 4), widths=(5,), num_classes=3, mean=(0.5,), std=(0.25,))
    ids = {"a": add(0), "b": add(1), "narrow": add(2, widths=(5,), params=make_tiny_params(2, other)),
           "mnist": add(3, dataset="mnist"), "c": add(4)}
    ids["half_tree"] = store_trees.create_tree("hierarchical", [ids["a"], ids["b"]], {}, key="half")
    return ids


def _snapshot() -> tuple[dict, set]:
    home = home_dir()
    with connect() as con:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    files = {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()
             and not p.name.startswith("lab.duckdb") and not p.name.endswith(".lock")}
    return counts, files


def _refused(argv, capsys, *needles) -> str:
    before = _snapshot()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code != 0, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert _snapshot() == before  # no job row, zoo, config row or file
    return err


def test_merge_refuses_unknown_mixed_and_damaged_leaves_before_any_row(stored, capsys):
    a, b = stored["a"], stored["b"]
    for background in ([], ["--background"]):
        _refused(["merge", "--models", f"{a},998,999", *background], capsys, "models 998, 999 do not exist")
        _refused(["merge", "--models", f"{a},{stored['narrow']}", *background], capsys, "different widths", "8-6")
        _refused(["merge", "--models", f"{a},{stored['mnist']}", *background], capsys, "different datasets")
    path = store_weights.weights_path(store_models.get_model(b)["weights"])
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-7])  # a truncated leaf
    _refused(["merge", "--models", f"{a},{b}"], capsys, f"model {b} (corrupt)", "store verify --repair")


def test_evaluate_and_merge_with_evaluation_refuse_an_offline_dataset(stored, capsys):
    _refused(["evaluate", "--models", "999"], capsys, "model 999 does not exist")
    _refused(["evaluate", "--models", str(stored["mnist"]), "--metrics", "accuracy"], capsys, "MNIST")
    mnist_pair = store_models.add_model(kind="trained", dataset="mnist", widths=[8, 6], config={},
                                        weights=store_models.get_model(stored["mnist"])["weights"], key="m5", seed=5)
    _refused(["merge", "--models", f"{stored['mnist']},{mnist_pair}", "--evaluate", "--metrics", "accuracy"],
             capsys, "MNIST")


def test_train_and_experiment_refuse_offline_cifar10(stored, capsys):
    _refused(["train", "--dataset", "cifar10", "--n", "2", "--epochs", "1", "--widths", "8"], capsys, "CIFAR-10")
    _refused(["train", "--dataset", "cifar10", "--n", "2", "--background"], capsys, "CIFAR-10")
    _refused(["experiment", "--dataset", "cifar10"], capsys, "cifar10")


def test_interpolate_refuses_unknown_and_incomplete_trees(stored, capsys):
    _refused(["interpolate", "--tree", "999"], capsys, "tree 999 does not exist")
    _refused(["interpolate", "--tree", str(stored["half_tree"])], capsys, "incomplete")
    _refused(["interpolate", "--models", f"{stored['a']},{stored['narrow']}"], capsys, "different widths")


def test_the_ui_path_gets_one_value_error_and_writes_nothing(stored):
    specs = [MergeSpec(model_ids=(stored["a"], 999)), EvaluateSpec(model_ids=(999,), eval={}),
             TrainSpec(name="z", train={"dataset": "cifar10", "widths": [8], "epochs": 1}, n_models=2),
             ExperimentSpec(preset="demo", dataset="cifar10"), InterpolateSpec(tree_ids=(stored["half_tree"],))]
    for spec in specs:
        before = _snapshot()
        with pytest.raises(InputError) as err:
            queue.submit_job(spec)  # what the pages call (they show the ValueError with st.error)
        assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
        assert _snapshot() == before


def test_good_input_passes(stored):
    check_inputs(MergeSpec(model_ids=(stored["a"], stored["b"], stored["c"]), methods=("hierarchical", "average")))
