"""docs/ARCHITECTURE.md's two recipes, followed to the letter on a copy of the source tree: "how to add a merge
method" (with a new merge option) and "how to add a metric". After the edits the recipes name (a new file plus
one registry / catalogue entry, the store's TREE_METHODS for a method, one OPTIONS entry for an option), the new
method, option and metric must show up everywhere by themselves: CLI choices, flags and help, the spec's fields,
the UI's options, job dispatch, keys, titles and exported tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TOY_METRIC = '''
"""A toy metric for the recipe test: the mean top logit."""

import torch

from backend.metrics import EvalRow


def toy_rows(model, x, y, config):
    with torch.no_grad():
        return [EvalRow("toy_margin", None, float(model(x).max(dim=1).values.mean()))]
'''

TOY_METHOD = '''
"""A toy merge method for the recipe test: λ-weighted mean of the first and the last leaf plus a shift (the toy
merge option), no alignment."""

import time

from backend.merge.tree import flat_nodes


def toy_nodes(leaves, *, progress=None, max_iter=100, lam=0.5, toy_shift=0.0):
    start = time.perf_counter()
    first, last = leaves[0], leaves[-1]
    params = {k: (1 - lam) * first[k] + lam * last[k] + toy_shift for k in first}
    return flat_nodes(leaves, params, None, time.perf_counter() - start)
'''

TOY_CHECK = '''def _check_toy_shift(value, n_leaves=None):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MergeError(f"toy_shift must be a number, got {value!r}")
    return float(value)


'''

CHECK = '''
import argparse

import torch

from backend.cli import build_parser
from backend.cli.common import eval_config_from_args
from backend.evaluate.config import EvalConfig
from backend.evaluate.suite import evaluate_model
from backend.export import export_bytes
from backend.jobs.spec import MergeSpec
from backend.merge.registry import MERGE_METHODS, get_method, method_label, method_short
from backend.metrics import family_rows, title
from backend.models import MLP, MLPConfig, state_dict_of
from backend.options import declared_field
from backend.tables import paper_table
from store.trees import TREE_METHODS
import pandas as pd

parser, _ = build_parser()
sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

# the metric: CLI, config, UI options, suite dispatch, Compare tab, titles, exports
args = sub["evaluate"].parse_args(["--models", "1", "--metrics", "accuracy,toy"])
config = EvalConfig.from_dict(eval_config_from_args(args))
assert config.metrics == ("accuracy", "toy")
metrics = declared_field(EvalConfig, "metrics").opt
assert "toy" in metrics.choices and metrics.show("toy") == "Toy margin metric"  # the Metrics multiselect
torch.manual_seed(0)
mlp = MLP(MLPConfig(in_shape=(1, 4, 4), widths=(8,), num_classes=3, mean=(0.5,), std=(0.25,)))
x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 3, (20,))
rows = evaluate_model(mlp, x, y, config)
toy = [r for r in rows if r.metric == "toy_margin"]
with torch.no_grad():
    assert len(toy) == 1 and abs(toy[0].value - float(mlp(x).max(dim=1).values.mean())) < 1e-6
assert "toy_margin" in family_rows("accuracy") and title("toy_margin") == "Toy margin"
table = pd.DataFrame({"group": ["zoo"], "method": ["zoo"], "zoo_kind": ["plain"], "level": [0],
                      "metric": ["toy_margin"], "param": [None], "mean": [1.5], "std": [0.1], "n": [4]})
wide = paper_table(table)
assert "Toy margin [logit]" in wide.columns and "Toy margin" in export_bytes(wide, "markdown").decode()

# the merge method: CLI help, spec, builder options and labels, dispatch, key, store vocabulary
merge_help = sub["merge"].format_help().replace("\\n", " ").replace("  ", " ")
assert "toy_merge = Toy merge" in merge_help
MergeSpec(model_ids=(1, 2), methods=("toy_merge",), lam=0.25).validate()
# the merge option: the spec's last option field (existing fields keep their order), its check, the CLI flag
import dataclasses

assert [f.name for f in dataclasses.fields(MergeSpec)][-2:] == ["toy_shift", "evaluate"]
spec = MergeSpec(model_ids=(1, 2), methods=("toy_merge",), toy_shift=0.5)
assert spec.toy_shift == 0.5 and MergeSpec(model_ids=(1, 2)).toy_shift == 0.0 and spec.option_values()["toy_shift"] == 0.5
assert MergeSpec.from_dict(spec.to_dict()) == spec
spec.validate()
try:
    MergeSpec(model_ids=(1, 2), toy_shift="far").validate()
    raise AssertionError("a bad toy_shift passed validation")
except ValueError as err:
    assert "toy_shift" in str(err)
assert "--toy-shift" in merge_help and "used by toy_merge" in " ".join(merge_help.split())
assert sub["merge"].parse_args(["--models", "1,2", "--toy-shift", "0.5"]).toy_shift == 0.5
assert "toy_merge" in list(MERGE_METHODS) and method_label("toy_merge") == "Toy merge"  # the builder's picker
assert method_short("toy_merge") == "toy" and "toy_merge" in TREE_METHODS
leaves = [state_dict_of(MLP(mlp.config)) for _ in range(3)]
nodes = get_method("toy_merge")(leaves, lam=0.25, seed=3, toy_shift=1.0)  # options it does not take: checked, ignored
root = nodes[-1].params["layers.0.weight"]
assert torch.allclose(root, 0.75 * leaves[0]["layers.0.weight"] + 0.25 * leaves[2]["layers.0.weight"] + 1.0)
assert get_method("toy_merge").tree_config({"lam": 0.25, "seed": 3}) == {"lam": 0.25, "toy_shift": 0.0}
assert "toy_shift" not in get_method("hierarchical").tree_config({"toy_shift": 1.0})
# its declared cost reaches the time estimates: one matching problem per tree, one stored root
from backend import estimate

assert estimate.merge_units("toy_merge", 4, (6, 5)) == 6 ** 3 + 5 ** 3 and estimate.merged_nodes("toy_merge", 4) == 1
print("RECIPES OK")
'''


def _insert_before(path: Path, marker: str, text: str) -> None:
    source = path.read_text()
    assert marker in source, f"the recipe's anchor {marker!r} is gone from {path}"
    path.write_text(source.replace(marker, text + marker, 1))


def test_recipes_add_a_merge_method_and_a_metric(tmp_path):
    tree = tmp_path / "src"
    for package in ("backend", "store", "app"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))

    # "how to add a metric": 1. the computation and its catalogue face in backend/evaluate/<name>.py
    (tree / "backend/evaluate/toy.py").write_text(TOY_METRIC)
    # 3. one Metric(...) entry in METRICS (no settings needed, so step 2 adds no EvalConfig field)
    _insert_before(tree / "backend/metrics.py", ")}\n\n# Rows that are not evaluation metrics", textwrap.indent(
        'Metric("toy", "Toy margin metric", (Row("toy_margin", "Toy margin", "logit"),),\n'
        '       "backend.evaluate.toy:toy_rows", logits_only=True),\n', "    "))

    # "how to add a merge method": 1. backend/merge/<name>.py, 2. one MergeMethod entry, 3. TREE_METHODS;
    # its new option: one MergeOption entry appended to OPTIONS, and its name in the method's options
    (tree / "backend/merge/toy_merge.py").write_text(TOY_METHOD)
    _insert_before(tree / "backend/merge/registry.py", "def _pairing_key", TOY_CHECK)
    _insert_before(tree / "backend/merge/registry.py", ")}\nALIGNMENT_OPTIONS", textwrap.indent(
        'MergeOption("toy_shift", 0.0, "Toy shift", "added to every merged weight", _check_toy_shift,\n'
        '            cli_type=float),\n', "    "))
    _insert_before(tree / "backend/merge/registry.py", ")}\nSTUDY_METHODS", textwrap.indent(
        'MergeMethod("toy_merge", "Toy merge", "toy", "backend.merge.toy_merge:toy_nodes", ("lam", "toy_shift"),\n'
        '            description="λ-mean of the first and last leaf, shifted", matchings=lambda n: 1.0),\n', "    "))
    _insert_before(tree / "store/trees.py", ")\n\n\ndef find_tree", ', "toy_merge"')

    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert out.returncode == 0 and "RECIPES OK" in out.stdout, out.stderr[-3000:]
