"""`python -m backend …` as a user runs it: help, one-line errors, and a full headless session."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from backend.cli import main
from store import jobs as store_jobs

SUBCOMMANDS = ("train", "merge", "evaluate", "interpolate", "export", "jobs", "experiment")


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "backend", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


@pytest.mark.parametrize("command", [(), *((c,) for c in SUBCOMMANDS)], ids=lambda c: " ".join(c) or "top")
def test_help_exits_zero(command):
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("args, words", [
    (("train", "--dataset", "imagenet"), "invalid choice"),
    (("train", "--n", "0"), "positive integer"),
    (("train", "--widths", "a,b"), "comma-separated positive integers"),
    (("merge", "--zoo", "42"), "zoo 42 does not exist"),
    (("merge", "--models", "1,2", "--method", "magic"), "unknown merge method 'magic'"),
    (("merge", "--models", "1,2,3,4", "--pairs", "0-1-2"), "joins more than two nodes"),
    (("evaluate", "--models", "1", "--metrics", "vibes"), "vibes"),
    (("jobs", "show", "7"), "job 7 does not exist"),
])
def test_bad_input_is_one_readable_line(args, words):
    result = cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_jobs_subcommands_in_process(capsys):
    job_id = store_jobs.create_job("evaluate", {"kind": "evaluate", "model_ids": [5], "eval": {}}, "k")
    assert main(["jobs", "list"]) == 0
    assert f"{job_id}" in capsys.readouterr().out
    assert main(["jobs", "run", str(job_id), "--quiet"]) == 2  # model 5 is not stored
    assert capsys.readouterr().err.strip() == "error: model 5 does not exist"
    assert main(["jobs", "show", str(job_id)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "failed" and shown["log"].endswith(f"logs/{job_id}.log")
    assert main(["jobs", "run", str(job_id)]) == 2  # only queued jobs run
    assert capsys.readouterr().err.strip() == f"error: job {job_id} is failed; only a queued job can be run"
    assert main(["jobs", "cancel", str(job_id)]) == 0
    assert capsys.readouterr().out.strip() == f"job {job_id}: failed"
    assert main(["jobs", "reap"]) == 0


def last_line_ids(stdout: str, prefix: str) -> list[int]:
    line = next(x for x in stdout.splitlines() if x.startswith(prefix))
    return [int(v) for v in line.removeprefix(prefix).split(",")]


@pytest.mark.realdata
def test_full_headless_session(tmp_path):
    train = cli("train", "--dataset", "fashion_mnist", "--n", 4, "--epochs", 1, "--widths", "32,16",
                "--train-subset", 2000, "--batch-size", 128, "--name", "session", "--curve-every", 5)
    assert train.returncode == 0, train.stderr
    assert "train:" in train.stdout  # progress lines
    zoo = last_line_ids(train.stdout, "zoo ")[0]
    models = last_line_ids(train.stdout, "models ")
    assert len(models) == 4
    from store import train_curves

    points = train_curves.curves(zoo_ids=[zoo])  # 16 steps per epoch: points at steps 5, 10, 15 and the epoch
    assert sorted(points["step"].dropna().astype(int).unique()) == [5, 10, 15] and len(points) == 4 * 4

    merge = cli("merge", "--zoo", zoo, "--method", "hierarchical", "--method", "merge_many", "--quiet")
    assert merge.returncode == 0, merge.stderr
    trees = [int(line.split()[1]) for line in merge.stdout.splitlines() if line.startswith("tree ")]
    assert len(trees) == 2

    evaluate = cli("evaluate", "--tree", ",".join(map(str, trees)), "--metrics", "accuracy,fgsm",
                   "--subset", 200, "--quiet")
    assert evaluate.returncode == 0, evaluate.stderr
    assert "8 evaluated" in evaluate.stdout  # 4 leaves + 2 + 1 hierarchical + 1 MergeMany

    again = cli("evaluate", "--tree", ",".join(map(str, trees)), "--metrics", "accuracy,fgsm",
                "--subset", 200, "--quiet")
    assert again.returncode == 0 and "0 evaluated, 8 cached" in again.stdout

    strong = cli("evaluate", "--models", ",".join(map(str, models)), "--metrics",
                 "accuracy,fgsm,apgd_linf,certified_linf", "--subset", 100, "--apgd-steps", 10, "--quiet")
    assert strong.returncode == 0, strong.stderr
    assert "4 evaluated" in strong.stdout and "apgd_linf_acc@0.02" in strong.stdout
    assert "certified_linf_acc@0.02" in strong.stdout

    out = tmp_path / "levels.csv"
    export = cli("export", "--tree", ",".join(map(str, trees)), "--out", out)
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(out.open()))
    assert {int(r["level"]) for r in rows} == {0, 1, 2}
    assert {r["metric"] for r in rows} >= {"accuracy", "fgsm_acc"}
    methods_at_2 = {r["method"] for r in rows if r["level"] == "2"}
    assert methods_at_2 == {"hierarchical", "merge_many"}
