"""The run table's pure parts: config columns from specs, filters and search, and the ETA's blend of the
job's estimate with its measured pace."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from backend import runs


def _jobs() -> pd.DataFrame:
    train = {"kind": "train", "name": "fmnist-small", "n_models": 4,
             "train": {"dataset": "fashion_mnist", "widths": [128, 64], "epochs": 3}}
    merge = {"kind": "merge", "model_ids": [1, 2, 3, 4], "methods": ["hierarchical", "merge_many"], "lam": 0.5,
             "pairing": [[[0, 1], [2, 3]], [[0, 1]]], "evaluate": {"subset": 300}}
    exp = {"kind": "experiment", "preset": "demo", "dataset": "fashion_mnist", "overrides": {}}
    t0 = pd.Timestamp("2026-01-01 10:00:00")
    return pd.DataFrame([
        {"id": 1, "kind": "train", "spec": json.dumps(train), "status": "done", "progress": 1.0,
         "started_at": t0, "finished_at": t0 + pd.Timedelta(seconds=90), "result": json.dumps({"cache_hits": 2}),
         "error": None},
        {"id": 2, "kind": "merge", "spec": json.dumps(merge), "status": "failed", "progress": 0.3,
         "started_at": t0, "finished_at": t0 + pd.Timedelta(seconds=5), "result": None, "error": "boom"},
        {"id": 3, "kind": "experiment", "spec": json.dumps(exp), "status": "queued", "progress": 0.0,
         "started_at": None, "finished_at": None, "result": None, "error": None}])


def test_runs_table_flattens_every_kind_of_spec():
    table = runs.runs_table(_jobs()).set_index("id")
    assert list(table.index) == [3, 2, 1]  # newest first
    assert table.loc[1, ["name", "dataset", "widths", "epochs", "n_models", "cache_hits"]].tolist() == [
        "fmnist-small", "fashion_mnist", "128-64", 3, 4, 2]
    assert table.loc[1, "duration_s"] == 90.0 and pd.isna(table.loc[3, "duration_s"])
    assert table.loc[2, "methods"] == "hierarchical, MergeMany" and table.loc[2, "pairing"] == "custom"
    assert table.loc[2, "leaves"] == 4 and table.loc[2, "eval_config"].endswith("· 300 test images")
    assert table.loc[3, "leaves"] == "1 tree of 4 + 1 of 8" and table.loc[3, "widths"] == "256-128"
    assert pd.isna(table.loc[2, "dataset"])  # a merge names model ids only: the store says what they are
    with_models = runs.runs_table(_jobs(), {1: ("fashion_mnist", "128-64")}).set_index("id")
    assert with_models.loc[2, ["dataset", "widths"]].tolist() == ["fashion_mnist", "128-64"]


def test_filters_and_search_combine():
    table = runs.runs_table(_jobs())
    assert list(runs.filter_runs(table, statuses=["failed", "done"])["id"]) == [2, 1]
    assert list(runs.filter_runs(table, kinds=["experiment"])["id"]) == [3]
    assert list(runs.filter_runs(table, search="mergemany")["id"]) == [3, 2]  # the experiment merges too
    assert list(runs.filter_runs(table, search="custom")["id"]) == [2]
    assert list(runs.filter_runs(table, search="fashion 128-64")["id"]) == [1]
    assert list(runs.filter_runs(table, search="#2")["id"]) == [2]
    assert runs.filter_runs(table, statuses=["done"], search="boom").empty


def test_eta_starts_from_the_estimate_and_moves_to_the_pace():
    assert runs.eta_seconds(None, 0.0, 100.0) is None
    assert runs.eta_seconds(10.0, 0.01, 100.0) == 90.0  # too early for a pace: the estimate speaks
    assert runs.eta_seconds(10.0, 0.01, None) is None
    assert runs.eta_seconds(100.0, 0.5, 1000.0) == pytest.approx(100.0)  # past 20 %: the pace alone
    # at 10 %: half the pace (60 s in -> 540 s to go) and half the estimate (300 - 60 = 240 s)
    assert runs.eta_seconds(60.0, 0.1, 300.0) == pytest.approx(0.5 * 540 + 0.5 * 240)
    assert runs.eta_seconds(400.0, 0.05, 300.0) == pytest.approx(0.25 * 7600 + 0.75 * 0.0)
