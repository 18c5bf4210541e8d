"""comparison_table numbers on a hand-built frame, and every export format round-trips its values."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from backend.export import FORMATS, export_bytes, format_for_path, write_table
from backend.levels import LEVEL_COLUMNS, eval_key_summary
from backend.tables import comparison_display, comparison_table


def _row(model_id, level, metric, param, value, group="hierarchical", eval_key="k1", tree_id=1):
    method = "zoo" if group.endswith("zoo") else group
    return dict(model_id=model_id, tree_id=tree_id, method=method, level=level, kind="trained", zoo_kind="plain",
                group=group, eval_key=eval_key, metric=metric, param=param, value=value)


@pytest.fixture
def frame():
    rows = [
        _row(1, 0, "accuracy", None, 0.80), _row(2, 0, "accuracy", None, 0.90),
        _row(3, 0, "accuracy", None, 0.70), _row(4, 1, "accuracy", None, 0.60),
        _row(1, 0, "fgsm_acc", 0.0, 0.80), _row(2, 0, "fgsm_acc", 0.0, 0.90),
        _row(1, 0, "fgsm_acc", 0.01, 0.40), _row(2, 0, "fgsm_acc", 0.01, 0.20),
        _row(9, 0, "accuracy", None, 0.50, group="L2 zoo"),
    ]
    return pd.DataFrame(rows, columns=LEVEL_COLUMNS)


def test_comparison_table_known_answer(frame):
    t = comparison_table(frame)
    acc0 = t[(t.group == "unmerged leaves") & (t.level == 0) & (t.metric == "accuracy")].iloc[0]
    assert acc0["mean"] == pytest.approx(0.80)
    assert acc0["std"] == pytest.approx(0.10)  # sample std of 0.7, 0.8, 0.9
    assert acc0["n"] == 3
    acc1 = t[(t.level == 1) & (t.metric == "accuracy")].iloc[0]
    assert acc1["n"] == 1 and math.isnan(acc1["std"])
    eps = t[(t.metric == "fgsm_acc") & (t.param == 0.01)].iloc[0]
    assert eps["mean"] == pytest.approx(0.30) and eps["std"] == pytest.approx(math.sqrt(0.02))
    assert set(t.group) == {"unmerged leaves", "hierarchical", "L2 zoo"}
    assert len(t) == 5  # leaves acc, h L1 acc, fgsm@0, fgsm@0.01, L2 zoo acc


def test_comparison_table_counts_a_shared_leaf_once(frame):
    """Leaves of a second tree (and of a MergeMany over them) are the same models: n stays 3, not 6."""
    again = [dict(r, tree_id=2, method=m, group=m) for m in ("hierarchical", "merge_many")
             for r in frame[frame.level == 0].to_dict("records") if r["method"] != "zoo"]
    t = comparison_table(pd.concat([frame, pd.DataFrame(again)], ignore_index=True))
    acc0 = t[(t.level == 0) & (t.metric == "accuracy") & (t.group == "unmerged leaves")].iloc[0]
    assert acc0["n"] == 3 and acc0["mean"] == pytest.approx(0.80)
    assert set(t.loc[t.level == 0, "group"]) == {"unmerged leaves", "L2 zoo"}


def test_comparison_table_metric_filter_and_mixed_configs(frame):
    only = comparison_table(frame, metrics=["fgsm_acc"])
    assert set(only.metric) == {"fgsm_acc"} and len(only) == 2
    mixed = pd.concat([frame, pd.DataFrame([_row(5, 0, "accuracy", None, 0.1, eval_key="k2")])])
    with pytest.raises(ValueError, match="eval_key"):
        comparison_table(mixed)
    summary = eval_key_summary(mixed)
    assert summary.iloc[0]["eval_key"] == "k1" and summary.iloc[0]["n_models"] == 5


def test_comparison_display_is_level_by_metric(frame):
    wide = comparison_display(comparison_table(frame))
    row = wide[(wide.group == "unmerged leaves") & (wide.level == 0)].iloc[0]
    assert row["accuracy"] == "0.8 ± 0.1"
    assert row["fgsm_acc@0.01"].startswith("0.3 ± ")
    assert list(wide.columns[:3]) == ["group", "level", "n"]


def test_comparison_table_empty():
    assert comparison_table(pd.DataFrame(columns=LEVEL_COLUMNS)).empty


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_formats_contain_values(frame, fmt):
    table = comparison_table(frame)
    data = export_bytes(table, fmt)
    if fmt == "csv":
        back = pd.read_csv(io.BytesIO(data))
        pd.testing.assert_frame_equal(back[["level", "mean", "n"]], table[["level", "mean", "n"]],
                                      check_dtype=False)
    elif fmt == "parquet":
        back = pd.read_parquet(io.BytesIO(data))
        pd.testing.assert_frame_equal(back, table)
    else:
        text = data.decode()
        assert "0.8" in text and "hierarchical" in text
        if fmt == "markdown":
            assert _cells(text.splitlines()[0])[:2] == ["group", "method"]
            assert len(text.strip().splitlines()) == len(table) + 2
        else:
            assert text.startswith("\\begin{tabular}") and "L2 zoo" in text and r"fgsm\_acc" in text


def test_write_table_is_atomic_and_picks_format(frame, tmp_path):
    path = write_table(frame, tmp_path / "out" / "levels.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame.reset_index(drop=True), check_dtype=False)
    assert [p.name for p in path.parent.iterdir()] == ["levels.parquet"]  # no temp file left behind
    assert format_for_path("x.tex") == "latex"
    with pytest.raises(ValueError, match="format"):
        write_table(frame, tmp_path / "levels.xlsx")
    with pytest.raises(ValueError, match="unknown export format"):
        export_bytes(frame, "xml")


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_human_formats_blank_missing_text_cells(fmt):
    """None/NaN in text columns (pandas 3 `str` and object columns), NA, NaT and duplicate names export."""
    df = pd.DataFrame({
        "series": pd.Series(["hierarchical", None, "L2 zoo"], dtype="str"),
        "note": pd.Series([None, float("nan"), "a|b"], dtype=object),
        "n": pd.array([3, None, 1], dtype="Int64"),
        "mean": [0.812345, float("nan"), 0.5],
        "when": pd.to_datetime(["2026-01-02", None, "2026-01-03"]),
    })
    df.insert(0, "dup", ["x", "y", "z"])
    df.insert(1, "dup", [1.0, None, 2.0], allow_duplicates=True)
    text = export_bytes(df, fmt).decode()
    lines = text.strip().splitlines()
    if fmt == "markdown":  # a pipe table laid out by pandas (tabulate pads cells to their column's width)
        assert _cells(lines[0]) == ["dup", "dup", "series", "note", "n", "mean", "when"]
        assert _cells(lines[1]) == [":---", "---:", ":---", ":---", "---:", "---:", ":---"]  # numbers right
        assert _cells(lines[2]) == ["x", "1", "hierarchical", "", "3", "0.8123", "2026-01-02 00:00:00"]
        assert _cells(lines[3]) == ["y", "", "", "", "", "", ""]
        assert _cells(lines[4])[:6] == ["z", "2", "L2 zoo", "a\\|b", "1", "0.5"]
    else:
        assert r"y &  &  &  &  &  &  \\" in text and "nan" not in text.lower() and "NaT" not in text
        assert lines[0] == r"\begin{tabular}{lrllrrl}"


def _cells(line: str) -> list[str]:
    """The cells of one Markdown table row, padding stripped; an escaped pipe stays in its cell; a rule
    row's dashes shortened to their alignment (':---', '---:', '---')."""
    import re

    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    return [re.sub("-+", "---", c) if set(c) <= {"-", ":"} and c else c for c in cells]


def test_markdown_of_an_empty_frame_keeps_its_header():
    text = export_bytes(pd.DataFrame(columns=["group", "level"]), "markdown").decode()
    lines = text.splitlines()
    assert len(lines) == 2 and _cells(lines[0]) == ["group", "level"] and set(lines[1]) <= {"|", "-", ":"}


def test_paper_table_is_wide_with_units_and_counts(frame):
    from backend.tables import paper_table

    wide = paper_table(comparison_table(frame))
    assert list(wide.columns[:2]) == ["group", "level"]
    row = wide[(wide.group == "unmerged leaves") & (wide.level == 0)].iloc[0]
    assert row["Test accuracy [share]"] == "0.8 ± 0.1 (3)"
    assert row["FGSM robust accuracy, ε = 0.01 [share]"].endswith("(2)")
    tex = export_bytes(wide, "latex").decode()
    assert "\\toprule" in tex and "Test accuracy [share]" in tex and "0.8 ± 0.1 (3)" in tex


def test_charts_download_as_svg_png_pdf_without_doubled_titles():
    from backend import charts

    summary = pd.DataFrame([dict(group=g, method=m, zoo_kind=None, level=lv, metric=metric, param=p, mean=0.8,
                                 std=0.01, n=3)
                            for g, m, lv in (("unmerged leaves", "leaves", 0), ("hierarchical", "hierarchical", 1))
                            for metric, p in (("weight_norm", None), ("noise_acc", 0.0), ("noise_acc", 0.1))])
    points = pd.DataFrame(columns=["model_id", "tree_id", "method", "level", "group", "metric", "param", "value"])
    norm = charts.level_chart(summary, points, "weight_norm")
    assert norm["layer"][0]["encoding"]["y"]["title"] == "Weight norm Σ‖W‖_F + ‖b‖₂"
    noise = charts.curve_chart(summary, "noise_acc")
    assert noise["title"]["text"] == "Accuracy under Gaussian noise vs σ"
    assert any(p["name"] == "pick" and p["bind"] == "legend" for p in noise["layer"][1]["params"])
    assert any(p.get("bind") == "scales" for p in noise["layer"][1]["params"])  # zoom and pan
    from backend.figures import figure_bytes

    assert figure_bytes(noise, "svg").startswith(b"<svg")
    assert figure_bytes(noise, "png")[:4] == b"\x89PNG"
    assert figure_bytes(norm, "pdf")[:4] == b"%PDF"


def test_an_infinite_attack_median_is_left_out_of_charts_and_said_so():
    """A model most of whose samples survive the largest ε has median size +∞, and so has its group's mean:
    charts draw what is finite, never average ∞ away, and say in the subtitle what they left out."""
    import math

    from backend import charts

    metric = "pgd_linf_median"
    summary = pd.DataFrame({"group": ["unmerged leaves", "hierarchical", "hierarchical"],
                            "method": ["leaves", "hierarchical", "hierarchical"], "level": [0, 1, 2],
                            "metric": metric, "param": None, "mean": [0.01, math.inf, 0.02],
                            "std": [0.001, math.nan, 0.0], "n": [2, 2, 1]})
    points = pd.DataFrame({"model_id": [1, 2, 3, 4, 5], "tree_id": 9, "method": ["leaves"] * 2 + ["hierarchical"] * 3,
                           "level": [0, 0, 1, 1, 2], "group": ["unmerged leaves"] * 2 + ["hierarchical"] * 3,
                           "metric": metric, "param": None, "value": [0.01, 0.012, math.inf, 0.03, 0.02]})
    level = charts.level_chart(summary, points, metric)
    assert list(level["datasets"]["merged"]["level"]) == [0, 2]  # the ∞ mean is not drawn
    assert sorted(level["datasets"]["points"]["model_id"]) == [1, 2, 4, 5]
    assert "not drawn: 1 model and 1 group mean" in level["title"]["subtitle"]
    methods = charts.method_chart(points, metric)
    means = methods["datasets"]["means"].set_index("what")["value"]
    assert means.to_dict() == pytest.approx({"unmerged leaves": 0.011, "hierarchical (merged)": 0.02})
    assert sorted(methods["datasets"]["finals"]["model_id"]) == [1, 2, 5]  # the root (level 2) is the final model
    assert "not drawn" not in methods["title"]["subtitle"]
    points.loc[points["model_id"] == 5, "value"] = math.inf  # now the root itself is ∞
    methods = charts.method_chart(points, metric)
    assert list(methods["datasets"]["means"]["what"]) == ["unmerged leaves"]  # no finite mean for the root
    assert "not drawn: 1 model and 1 group mean" in methods["title"]["subtitle"]
    only = charts.level_chart(summary[summary["level"] == 1], points[points["level"] == 1], metric)
    assert "not drawn" in only["data"]["values"][0]["text"]  # nothing finite: the empty chart says why


def test_brackets_and_config_labels_read_the_metric_catalogue():
    """Which rows bound robust accuracy from above (attacks) or below (certified), and the grid names in an
    evaluation config's label, come from backend/metrics.py, not from lists kept in charts or queries."""
    from backend.charts import bracket_rows
    from backend.evaluate.config import EvalConfig
    from backend.labels import eval_config_label
    from backend.metrics import ROWS

    upper, cert = bracket_rows("linf")
    assert cert == "certified_linf_acc" and set(upper) == {"fgsm_acc", "deepfool_linf_acc", "pgd_linf_acc",
                                                           "apgd_linf_acc"}
    upper, cert = bracket_rows("l2")
    assert cert == "certified_l2_acc" and "fgsm_acc" not in upper and "apgd_l2_acc" in upper
    assert all(ROWS[r].curve for r in upper)
    label = eval_config_label(EvalConfig(subset=64, metrics=("accuracy", "fgsm", "noise")).to_dict(), 3)
    assert label.startswith("test subset 64 · FGSM ε 0…0.02 (11) · noise σ") and label.endswith("3 models")
    assert "DeepFool" not in label  # grids of metrics the config did not ask for are not named
    full = eval_config_label(EvalConfig().to_dict())
    assert "DeepFool L∞ ε" in full and "DeepFool L2 ε" in full and "DeepFool 50 steps" in full
