"""The robustness bracket chart: certified (lower) to strongest attack (upper) per series and ε."""

from __future__ import annotations

import pandas as pd
import pytest

from backend.charts import bracket_chart, bracket_frame


def summary_rows():
    rows = []
    for group, method, level, shift in (("4-leaf trees", "leaves", 0, 0.0), ("4-leaf trees", "hierarchical", 1, 0.05)):
        for eps, fgsm, apgd, cert in ((0.0, 0.9, 0.9, 0.9), (0.01, 0.7, 0.6, 0.3), (0.02, 0.5, 0.45, 0.1)):
            for metric, value in (("fgsm_acc", fgsm), ("apgd_linf_acc", apgd), ("certified_linf_acc", cert)):
                rows.append({"group": group, "method": method, "zoo_kind": "plain", "level": level,
                             "metric": metric, "param": eps, "mean": value - shift, "std": 0.01, "n": 4})
    return pd.DataFrame(rows)


def test_bracket_frame_takes_the_lowest_attack_and_the_certificate():
    df = summary_rows()
    frame = bracket_frame(df, "linf").set_index(["series", "param"])
    leaves = frame.xs("4-leaf trees", level="series")  # the leaves are labelled by their group
    assert list(leaves["certified"]) == pytest.approx([0.9, 0.3, 0.1])
    assert list(leaves["attacked"]) == pytest.approx([0.9, 0.6, 0.45])
    assert list(leaves["ratio"]) == pytest.approx([1.0, 0.6 / 0.9, 0.45 / 0.9])
    merged = frame.xs("4-leaf trees · level 1", level="series")
    assert list(merged["attacked"]) == pytest.approx([0.85, 0.55, 0.40])
    spec = bracket_chart(df, "linf")
    assert len(spec["datasets"]["bracket"]) == 6 and spec["layer"][0]["mark"]["type"] == "area"


def test_bracket_chart_without_certificates_says_so():
    df = summary_rows()
    spec = bracket_chart(df[df["metric"] != "certified_linf_acc"], "linf")
    assert spec["mark"]["type"] == "text" and "No certified" in spec["data"]["values"][0]["text"]
    assert bracket_frame(df, "l2").empty
