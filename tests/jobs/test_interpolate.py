"""Interpolation jobs against a real store with tiny synthetic data: rows, cache hits, trees, CLI, export."""

from __future__ import annotations

import pytest

from backend.cli import main
from backend.connectivity import ConnectivityConfig, curves_for_pair
from backend.jobs import interpolate_step, merge_step, train_step
from backend.jobs.context import JobContext
from backend.jobs.spec import InterpolateSpec, MergeSpec, TrainSpec, spec_from_dict
from store import curves as store_curves
from store import models as store_models
from store import weights as store_weights
from tests.jobs.fakes import patch_tiny_data, tiny_split

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 2, "batch_size": 32, "lr": 0.01}
CONFIG = ConnectivityConfig(lam_grid=(0, 0.5, 1), repair=True, images=128).to_dict()


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)


def _zoo_and_tree():
    zoo_id = train_step.train_zoo(TrainSpec(name="tiny", train=TRAIN, n_models=4), JobContext.null())
    leaves = train_step.zoo_model_ids(zoo_id)
    (tree_id,) = merge_step.build_merges(MergeSpec(model_ids=tuple(leaves)), JobContext.null())
    return leaves, tree_id


def test_interpolate_a_tree_stores_rows_and_reruns_are_cache_hits(monkeypatch):
    leaves, tree_id = _zoo_and_tree()
    pairs = interpolate_step.tree_parent_pairs(tree_id)
    assert pairs[:2] == [(leaves[0], leaves[1]), (leaves[2], leaves[3])] and len(pairs) == 3
    spec = InterpolateSpec(pairs=((leaves[0], leaves[2]),), tree_ids=(tree_id,), config=CONFIG)
    assert spec_from_dict(spec.to_dict()) == spec
    result = interpolate_step.interpolate_pairs(spec, JobContext.null())
    assert result["computed"] == 4 and len(result["pairs"]) == 4
    key = ConnectivityConfig.from_dict(CONFIG).key()
    assert result["curve_key"] == key and store_curves.get_curve_config(key)["images"] == 128
    rows = store_curves.curves(curve_key=key)
    # 4 pairs x 3 alignments x (plain, REPAIR) x (3 λ x 2 metrics + 2 barriers)
    assert len(rows) == 4 * 3 * 2 * 8
    # the stored numbers are the pure function's numbers
    a, b = (store_weights.load_weights(store_models.get_model(m)["weights"]) for m in (leaves[0], leaves[2]))
    from backend.connectivity import image_batch
    from backend.data import to_float

    x, y = tiny_split(False)
    curves = curves_for_pair(a, b, ConnectivityConfig.from_dict(CONFIG), test=(to_float(x), y),
                             images=image_batch("fashion_mnist", 128, "train", 0))
    mine = rows[(rows["model_a"] == leaves[0]) & (rows["model_b"] == leaves[2])]
    for curve in curves:
        got = mine[(mine["align"] == curve.align) & (mine["repair"] == curve.repair) & (mine["metric"] == "loss")]
        assert list(got.sort_values("lam")["value"]) == pytest.approx(curve.loss)
        barrier = mine[(mine["align"] == curve.align) & (mine["repair"] == curve.repair)
                       & (mine["metric"] == "loss_barrier")]["value"]
        assert float(barrier.iloc[0]) == pytest.approx(curve.loss_barrier)

    calls = []
    monkeypatch.setattr("backend.connectivity.curves_for_pair", lambda *a, **k: calls.append(1))
    again = interpolate_step.interpolate_pairs(spec, JobContext.null())
    assert again["computed"] == 0 and calls == []


def test_an_interpolate_job_has_an_estimate_priced_per_pair():
    """Runs' ETA starts from the job's estimate: a tree's two-parent nodes count as pairs (3 for 4 leaves),
    and the work is linear in the pairs (the fixed overhead aside)."""
    from backend.estimate import job_estimate

    leaves, tree_id = _zoo_and_tree()
    one = job_estimate("interpolate", InterpolateSpec(pairs=((leaves[0], leaves[2]),), config=CONFIG).to_dict())
    four = job_estimate("interpolate", InterpolateSpec(pairs=((leaves[0], leaves[2]),), tree_ids=(tree_id,),
                                                       config=CONFIG).to_dict())
    assert one is not None and four is not None and one["total"] > one["overhead"]
    assert four["total"] - four["overhead"] == pytest.approx(4 * (one["total"] - one["overhead"]))
    assert job_estimate("interpolate", {"pairs": [], "tree_ids": [], "config": CONFIG}) is None


def test_bad_interpolate_specs():
    with pytest.raises(ValueError, match="at least one model pair or tree"):
        InterpolateSpec().validate()
    with pytest.raises(ValueError, match="two model ids"):
        InterpolateSpec(pairs=((1, 2, 3),)).validate()
    with pytest.raises(ValueError, match="distinct"):
        InterpolateSpec(pairs=((1, 1),)).validate()
    with pytest.raises(ValueError, match="grid"):
        InterpolateSpec(pairs=((1, 2),), config={"lam_grid": [0.2, 1]}).validate()
    with pytest.raises(ValueError, match="does not exist"):
        interpolate_step.interpolate_pairs(InterpolateSpec(tree_ids=(99,)), JobContext.null())


def test_cli_interpolate_and_export(capsys, tmp_path):
    leaves, tree_id = _zoo_and_tree()
    assert main(["interpolate", "--models", f"{leaves[0]},{leaves[1]}", "--align", "none,weight",
                 "--lam-grid", "0,0.5,1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "loss barrier" in out and "weight" in out and "1 pair(s) computed" in out
    assert main(["interpolate", "--tree", str(tree_id), "--align", "activation", "--repair", "--lam-grid", "3",
                 "--images", "64", "--quiet"]) == 0
    assert "3 pair(s) computed" in capsys.readouterr().out
    assert main(["interpolate", "--models", "1,2,3"]) == 2
    assert "exactly two ids" in capsys.readouterr().err
    assert main(["interpolate", "--models", "1,2", "--lam-grid", "0.3,1"]) == 2
    assert capsys.readouterr().err.startswith("error: the λ grid must start at 0")
    out_file = tmp_path / "curves.csv"
    assert main(["export", "--table", "curves", "--tree", str(tree_id), "--out", str(out_file)]) == 0
    import pandas as pd

    exported = pd.read_csv(out_file)
    # the tree's 3 parent pairs with activation (+REPAIR), and its first pair also from the first run
    assert set(exported["align"]) == {"none", "weight", "activation"}
    assert len(exported) == 3 * 2 * (3 * 2 + 2) + 2 * (3 * 2 + 2)
    assert {"level", "model_a", "model_b", "lam", "metric", "value", "curve_key"} <= set(exported.columns)
    barriers_file = tmp_path / "barriers.csv"
    assert main(["export", "--table", "barriers", "--tree", str(tree_id), "--out", str(barriers_file)]) == 0
    barriers = pd.read_csv(barriers_file)
    assert len(barriers) == 3 * 2 + 2 and (barriers["loss_barrier"] >= 0).all()
    assert sorted(set(barriers["level"])) == [1, 2]
