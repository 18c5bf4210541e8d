"""Matcher and REPAIR merge options through the registry: spec, tree keys, stored node configs, CLI."""

from __future__ import annotations

import dataclasses

import pytest

from backend.cli import main
from backend.jobs import merge_step, train_step
from backend.jobs.context import JobContext
from backend.jobs.spec import MergeSpec, TrainSpec, tree_key
from store import models as store_models
from store import trees as store_trees
from tests.jobs.fakes import patch_tiny_data

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 2, "batch_size": 32, "lr": 0.01}


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)


def _leaves():
    zoo_id = train_step.train_zoo(TrainSpec(name="tiny", train=TRAIN, n_models=4), JobContext.null())
    return train_step.zoo_model_ids(zoo_id)


def test_tree_keys_take_the_alignment_options_only_when_used():
    base = MergeSpec(model_ids=(1, 2, 3, 4), methods=("hierarchical", "merge_many", "average"))
    keys = {m: tree_key(base, m) for m in base.methods}
    # the image batch only matters to activation matching and REPAIR
    assert tree_key(dataclasses.replace(base, n_images=100), "hierarchical") == keys["hierarchical"]
    for change in ({"matcher": "activation"}, {"repair": True}):
        other = dataclasses.replace(base, **change)
        assert tree_key(other, "hierarchical") != keys["hierarchical"]
        assert tree_key(other, "merge_many") != keys["merge_many"]
        assert tree_key(other, "average") == keys["average"]
        more = dataclasses.replace(other, n_images=100)
        assert tree_key(more, "hierarchical") != tree_key(other, "hierarchical")
    with pytest.raises(ValueError, match="matcher"):
        dataclasses.replace(base, matcher="magic").validate()
    with pytest.raises(ValueError, match="images"):
        dataclasses.replace(base, repair=True, n_images=1).validate()


def test_repaired_activation_matched_trees_are_stored_side_by_side():
    leaves = _leaves()
    plain = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical", "merge_many"))
    fixed = dataclasses.replace(plain, matcher="activation", repair=True, n_images=128)
    plain_ids = merge_step.build_merges(plain, JobContext.null())
    fixed_ids = merge_step.build_merges(fixed, JobContext.null())
    assert set(plain_ids).isdisjoint(fixed_ids)
    for tree_id in fixed_ids:
        tree = store_trees.get_tree(tree_id)
        assert tree["config"]["matcher"] == "activation" and tree["config"]["repair"] is True
        assert tree["config"]["n_images"] == 128 and tree["config"]["image_split"] == "train"
        nodes = store_models.list_models(tree_id=tree_id)
        for mid in nodes["id"]:
            config = store_models.get_model(int(mid))["config"]
            assert config["matcher"] == "activation" and config["repair"] is True
    for tree_id in plain_ids:
        assert "matcher" not in store_trees.get_tree(tree_id)["config"]
    # same leaves, different weights at the root
    from store import weights

    roots = [store_trees.get_tree(t)["root_model_id"] for t in (plain_ids[0], fixed_ids[0])]
    a, b = (weights.load_weights(store_models.get_model(r)["weights"]) for r in roots)
    assert any(not (a[k] == b[k]).all() for k in a)
    assert merge_step.build_merges(fixed, JobContext.null()) == fixed_ids  # a rerun is a cache hit
    # Compare and the tree pickers tell the variant from the plain tree over the same leaves
    from backend.levels import level_members
    from backend.listings import trees_table

    members = level_members(tree_ids=[plain_ids[0], fixed_ids[0]])
    merged = members[members["level"] > 0]
    assert set(merged["group"]) == {"hierarchical", "hierarchical · activation matching + REPAIR"}
    labels = dict(zip(trees_table()["tree_id"], trees_table()["label"], strict=True))
    assert "merge_many · activation matching + REPAIR" in labels[fixed_ids[1]]
    assert labels[plain_ids[0]].startswith(f"#{plain_ids[0]} hierarchical · ")


def test_cli_merge_with_matcher_and_repair(capsys):
    leaves = _leaves()
    code = main(["merge", "--models", ",".join(map(str, leaves)), "--matcher", "activation", "--repair",
                 "--n-images", "64", "--quiet"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    tree_id = int(out.split("tree ")[1].split(" ")[0])
    assert store_trees.get_tree(tree_id)["config"]["repair"] is True
    assert main(["merge", "--models", ",".join(map(str, leaves)), "--matcher", "magic"]) == 2
