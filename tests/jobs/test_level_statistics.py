"""Per-level statistics on an awkward store: shared leaves, a 3-leaf tree (carried node), a custom pairing.

Every path that aggregates (DuckDB level_summary, the pandas comparison_table, the CLI export) must equal
a hand computation from the raw evaluation rows: leaves once, carried nodes out, n = distinct models.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.awkward_store import EVAL_KEY, assert_matches, build_awkward_store, expected_levels


@pytest.fixture
def awkward():
    return build_awkward_store()


def test_the_carried_node_is_flagged_in_the_store(awkward):
    from store import models, trees

    c = awkward["trees"]["C"]
    nodes = models.list_models(tree_id=c).sort_values("node_index")
    assert list(nodes["level"]) == [1, 1, 2]
    assert list(nodes["carried"]) == [False, True, False]
    carried = nodes[nodes["carried"]].iloc[0]
    assert json.loads(carried["parents"]) == [awkward["leaves"][4]]
    assert carried["weights"] == models.get_model(awkward["leaves"][4])["weights"]  # a copy, not a merge
    assert len(trees.list_merges(c)) == 2  # the two real merges only
    for name in ("A", "B", "D", "E"):
        assert not models.list_models(tree_id=awkward["trees"][name])["carried"].any()


def test_migration_backfills_the_carried_flag_of_an_old_store():
    """A store written before the carried migration gets the flag from the node's shape (one parent, in a tree)."""
    import duckdb

    from store.migrations import MIGRATIONS, migrate

    con = duckdb.connect()
    for sql in MIGRATIONS[0].statements:
        con.execute(sql)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    rows = [(1, "trained", None, "[]"), (2, "trained", None, "[]"), (3, "trained", None, "[]"),
            (4, "hierarchical", 1, "[1,2]"), (5, "hierarchical", 1, "[3]"), (6, "hierarchical", 1, "[4,5]"),
            (7, "merge_many", 2, "[1,2,3]")]
    for mid, kind, tree, parents in rows:
        con.execute("INSERT INTO models (id, kind, dataset, widths, config, weights, tree_id, parents, key, "
                    "created_at) VALUES (?, ?, 'd', '[]', '{}', 'h', ?, ?, ?, now())",
                    [mid, kind, tree, parents, f"k{mid}"])
    assert migrate(con) == [m.version for m in MIGRATIONS[1:]]
    flagged = con.execute("SELECT id FROM models WHERE carried ORDER BY id").fetchall()
    assert flagged == [(5,)]
    assert con.execute("SELECT count(*) FROM models WHERE carried IS NULL").fetchone()[0] == 0


@pytest.mark.parametrize("selection", [("A", "B"), ("A", "B", "C", "D", "E"), ("C",), ("D", "A")])
def test_duckdb_and_pandas_statistics_equal_the_hand_computation(awkward, selection):
    from backend.levels import level_members, level_metrics, level_summary, stat_members
    from backend.tables import comparison_table

    tree_ids = [awkward["trees"][t] for t in selection]
    want = expected_levels(tree_ids)
    fast = level_summary(stat_members(level_members(tree_ids=tree_ids)), EVAL_KEY)
    slow = comparison_table(level_metrics(tree_ids=tree_ids, eval_key=EVAL_KEY))
    assert_matches(fast, want)
    assert_matches(slow, want)


def test_counts_on_the_awkward_store(awkward):
    """The numbers a reader checks by eye: 6 distinct leaves, 3-leaf tree's level 1 holds one merge."""
    from backend.levels import level_members, level_summary, stat_members

    t = awkward["trees"]
    acc = level_summary(stat_members(level_members(tree_ids=list(t.values()))), EVAL_KEY, ["accuracy"])
    n = {(g, lv): k for g, lv, k in zip(acc["group"], acc["level"], acc["n"], strict=True)}
    # leaves once (6, not 4+4+3+4+4); level 1: A 2, B 2, C 1 (+1 carried, left out), D 2; roots: 4
    assert n == {("unmerged leaves", 0): 6, ("hierarchical", 1): 7, ("hierarchical", 2): 4, ("merge_many", 2): 1}
    only_c = level_summary(stat_members(level_members(tree_ids=[t["C"]])), EVAL_KEY, ["accuracy"])
    assert only_c.set_index(["group", "level"]).loc[("hierarchical", 1), "n"] == 1


def test_cli_export_comparison_has_one_leaves_group_and_no_carried_node(awkward, tmp_path, capsys):
    from backend.cli import main

    t = awkward["trees"]
    out = tmp_path / "cmp.csv"
    ids = ",".join(str(t[k]) for k in ("A", "C", "E"))
    assert main(["export", "--tree", ids, "--table", "comparison", "--eval-key", EVAL_KEY,
                 "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert sorted(set(table.loc[table["level"] == 0, "group"])) == ["unmerged leaves"]
    assert_matches(table, expected_levels([t["A"], t["C"], t["E"]]))
    # the long table keeps one row per tree and model, but carried nodes are not in it
    long = tmp_path / "levels.csv"
    assert main(["export", "--tree", str(t["C"]), "--eval-key", EVAL_KEY, "--out", str(long)]) == 0
    rows = pd.read_csv(long)
    from store import models

    nodes = models.list_models(tree_id=t["C"])
    assert int(nodes.loc[nodes["carried"], "id"].iloc[0]) not in set(rows["model_id"])


def test_cli_export_wide_paper_table(awkward, tmp_path):
    from backend.cli import main

    t = awkward["trees"]
    ids = ",".join(str(t[k]) for k in ("A", "B", "C"))
    out = tmp_path / "wide.tex"
    assert main(["export", "--tree", ids, "--table", "wide", "--eval-key", EVAL_KEY, "--out", str(out)]) == 0
    tex = out.read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "Test accuracy [share]" in tex and "FGSM robust accuracy, ε = 0.01 [share]" in tex
    csv = tmp_path / "wide.csv"
    assert main(["export", "--tree", ids, "--table", "wide", "--eval-key", EVAL_KEY, "--out", str(csv)]) == 0
    wide = pd.read_csv(csv)
    assert list(zip(wide["group"], wide["level"], strict=True)) == [
        ("hierarchical", 1), ("hierarchical", 2), ("unmerged leaves", 0)]  # one row per group × level
    want = expected_levels([t["A"], t["B"], t["C"]])
    acc = want[(want["metric"] == "accuracy") & (want["group"] == "unmerged leaves")].iloc[0]
    cell = wide.loc[wide["group"] == "unmerged leaves", "Test accuracy [share]"].iloc[0]
    assert cell == f"{acc['mean']:.4g} ± {acc['std']:.2g} ({acc['n']})" and acc["n"] == 6


def test_split_series_by_tree_size_and_pairing(awkward):
    from backend.levels import level_members, level_summary, stat_members

    t = awkward["trees"]
    members = level_members(tree_ids=list(t.values()))
    acc = level_summary(stat_members(members, ["leaves"]), EVAL_KEY, ["accuracy"])
    n = {(g, lv): k for g, lv, k in zip(acc["group"], acc["level"], acc["n"], strict=True)}
    assert n == {("unmerged leaves", 0): 6,  # tree settings do not split the leaves
                 ("hierarchical · 4 leaves", 1): 6, ("hierarchical · 4 leaves", 2): 3,
                 ("hierarchical · 3 leaves", 1): 1, ("hierarchical · 3 leaves", 2): 1,
                 ("merge_many · 4 leaves", 2): 1}
    by_pairing = level_summary(stat_members(members, ["pairing", "lam"]), EVAL_KEY, ["accuracy"])
    groups = set(by_pairing["group"])
    assert "hierarchical · pairing (0,2)(1,3) | (0,1) · λ 0.5" in groups
    assert "hierarchical · pairing as listed · λ 0.5" in groups
    custom = by_pairing[by_pairing["group"] == "hierarchical · pairing (0,2)(1,3) | (0,1) · λ 0.5"]
    assert dict(zip(custom["level"], custom["n"], strict=True)) == {1: 2, 2: 1}
    by_zoo = level_summary(stat_members(members, ["zoo", "reg"]), EVAL_KEY, ["accuracy"])
    assert f"unmerged leaves · zoo #{awkward['zoo']} · none" in set(by_zoo["group"])


SPLITS = ("leaves", "lam", "pairing", "seed", "zoo", "dataset", "widths", "reg")


@pytest.mark.parametrize("split", SPLITS)
def test_a_split_keeps_reference_zoos_apart_and_pools_back_to_the_hand_computation(awkward, split):
    """Splitting by any setting never moves a reference zoo's models into the leaves (it once did: the
    settings' `method` column blanked the members' method), and pooling the split series gives the numbers."""
    from backend.levels import selection_summary
    from tests.awkward_store import add_reference_zoo, expected_zoo

    zoo = add_reference_zoo("l2")
    trees = list(awkward["trees"].values())
    got = selection_summary(trees, [zoo], EVAL_KEY, [split])
    refs = got[got["method"] == "zoo"]
    assert refs["group"].nunique() == 1 and refs["group"].iloc[0].startswith("L2 zoo")
    assert_matches(refs.assign(group="L2 zoo"), expected_zoo(zoo, "L2 zoo"))
    want = expected_levels(trees)
    leaves = got[got["method"] == "leaves"]
    assert leaves["group"].nunique() == 1  # one zoo under the trees: nothing to split the leaves by
    assert_matches(leaves.assign(group="unmerged leaves"), want[want["group"] == "unmerged leaves"])
    merged = got[~got["method"].isin(["zoo", "leaves"])]
    # every merged node belongs to one tree, so the split series pool back to the unsplit statistics
    pooled = merged.assign(total=merged["mean"] * merged["n"], param=merged["param"].astype(float)).groupby(
        ["method", "level", "metric", "param"], dropna=False)[["total", "n"]].sum().reset_index()
    pooled = pooled.assign(mean=pooled["total"] / pooled["n"]).rename(columns={"method": "group"})
    rest = want[want["group"] != "unmerged leaves"]
    both = rest.assign(param=rest["param"].astype(float)).merge(pooled, on=["group", "level", "metric", "param"],
                                                                 suffixes=("", "_got"))
    assert len(both) == len(rest) == len(pooled) and (both["n"] == both["n_got"]).all()
    assert both["mean_got"].to_numpy() == pytest.approx(both["mean"].to_numpy(), abs=1e-12)


def test_compare_charts_draw_the_hand_computed_numbers(awkward):
    """The data inside Compare's charts (the same builders the CLI writes to files) equal the hand computation;
    each model's own curve averages to its series' mean line."""
    from backend.charts import compare_figures
    from backend.levels import selection_points, selection_summary

    trees = [awkward["trees"][k] for k in ("A", "B", "C", "E")]
    summary = selection_summary(trees, [], EVAL_KEY)
    figures = compare_figures(summary, selection_points(trees, EVAL_KEY), models=True)
    assert {"accuracy", "weight_norm", "fgsm_acc", "methods-accuracy"} <= set(figures)
    want = expected_levels(trees)
    acc = figures["accuracy"]["datasets"]["merged"]
    drawn = acc.assign(metric="accuracy", param=float("nan"))
    assert_matches(drawn, want[want["metric"] == "accuracy"])
    curve = figures["fgsm_acc"]["datasets"]
    series = {"unmerged leaves": ("unmerged leaves", 0), "hierarchical · level 1": ("hierarchical", 1),
              "hierarchical · level 2": ("hierarchical", 2), "merge_many · level 2": ("merge_many", 2)}
    lines = curve["curve"].assign(group=[series[s][0] for s in curve["curve"]["series"]],
                                  level=[series[s][1] for s in curve["curve"]["series"]], metric="fgsm_acc")
    assert_matches(lines, want[want["metric"] == "fgsm_acc"])
    own = curve["models"].groupby(["series", "param"])["value"].agg(["mean", "count"]).reset_index()
    both = own.merge(curve["curve"], on=["series", "param"], suffixes=("_own", ""))
    assert len(both) == len(curve["curve"]) and (both["count"] == both["n"]).all()
    assert both["mean_own"].to_numpy() == pytest.approx(both["mean"].to_numpy(), abs=1e-12)


def test_cli_export_writes_compares_figures_with_its_split(awkward, tmp_path, capsys):
    from backend.cli import main
    from backend.levels import selection_summary

    t = awkward["trees"]
    ids = [t[k] for k in ("A", "C", "D")]
    out, figs = tmp_path / "cmp.csv", tmp_path / "figs"
    assert main(["export", "--tree", ",".join(map(str, ids)), "--table", "comparison", "--split", "leaves",
                 "--out", str(out), "--figures", str(figs), "--figure-format", "svg,pdf", "--each-model"]) == 0
    err = capsys.readouterr().err
    assert "2 evaluation configs; using " + EVAL_KEY in err  # Compare's default config, said aloud
    table = pd.read_csv(out)
    assert set(table["group"]) == {"unmerged leaves", "hierarchical · 4 leaves", "hierarchical · 3 leaves"}
    assert_matches(table, selection_summary(ids, [], EVAL_KEY, ["leaves"]))
    names = sorted(p.name for p in figs.iterdir())
    assert {"accuracy.svg", "accuracy.pdf", "fgsm_acc.svg", "weight_norm.pdf", "methods-accuracy.svg"} <= set(names)
    assert not [n for n in names if n.endswith(".png")]
    svg = (figs / "fgsm_acc.svg").read_text()
    assert svg.startswith("<svg") and "hierarchical · 3 leaves · level 1" in svg  # the split, in the legend
    assert (figs / "accuracy.pdf").read_bytes()[:4] == b"%PDF"
    assert main(["export", "--tree", str(ids[0]), "--figures", str(figs), "--figure-format", "gif"]) == 2
    assert main(["export", "--tree", str(ids[0]), "--split", "method", "--out", str(out)]) == 2


def test_cli_split_choices_are_compares():
    from backend.cli.export import SPLIT_SETTINGS
    from backend.levels import SETTINGS

    assert SPLIT_SETTINGS == SPLITS == tuple(k for k in SETTINGS if k != "method")


def test_report_numbers_on_the_awkward_store_equal_the_hand_computation(awkward):
    """The Report's per-level and robustness tables (the numbers its charts draw) over an experiment on the
    awkward store: leaves once, each level's merges, the zoos, all equal to the raw rows' statistics."""
    from backend.report import build_report
    from tests.awkward_store import add_reference_zoo, expected_zoo, record_experiment

    t = awkward["trees"]
    l2 = add_reference_zoo("l2")
    tables = {name: table for s in build_report(record_experiment(awkward, l2)).sections
              for name, table in s.tables.items()}
    want = expected_levels([t["A"], t["E"]])
    acc = want[want["metric"] == "accuracy"].set_index(["group", "level"])
    got = tables["accuracy_per_level"].set_index(["series", "level"])
    pairs = {("hierarchical · 4 leaves", 0): ("unmerged leaves", 0), ("hierarchical · 4 leaves", 1): ("hierarchical", 1),
             ("hierarchical · 4 leaves", 2): ("hierarchical", 2), ("MergeMany · 4 leaves", 2): ("merge_many", 2)}
    assert sorted(got.index) == sorted(pairs)
    for key, ref in pairs.items():
        assert got.loc[key, "n"] == acc.loc[ref, "n"] and got.loc[key, "mean"] == pytest.approx(acc.loc[ref, "mean"])
    curves = tables["fgsm_acc_curves"]
    fgsm = want[want["metric"] == "fgsm_acc"]
    refs = {"unmerged": expected_zoo(awkward["zoo"], "unmerged"), "L2-regularised": expected_zoo(l2, "L2-regularised"),
            "hierarchical level 1 (2 models)": fgsm[(fgsm["group"] == "hierarchical") & (fgsm["level"] == 1)],
            "hierarchical level 2 (4 models)": fgsm[(fgsm["group"] == "hierarchical") & (fgsm["level"] == 2)],
            "MergeMany": fgsm[fgsm["group"] == "merge_many"]}
    assert set(curves["series"]) == set(refs)
    for series, ref in refs.items():
        ref = ref[ref["metric"] == "fgsm_acc"].sort_values("param")
        mine = curves[curves["series"] == series].sort_values("param")
        assert list(mine["n"]) == list(ref["n"]) and list(mine["param"]) == pytest.approx(list(ref["param"]))
        assert list(mine["mean"]) == pytest.approx(list(ref["mean"]), abs=1e-12)
