"""One-glance counts for the home page and `python -m backend jobs`."""

from __future__ import annotations

from store.db import connect
from store.jobs import JobStatus


def counts() -> dict[str, int]:
    """zoos, models, trees, evaluations (result rows), evaluated_models, running_jobs, queued_jobs,
    experiments — one short query."""
    with connect() as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM zoos), (SELECT count(*) FROM models), (SELECT count(*) FROM trees), "
            "(SELECT count(*) FROM evaluations), (SELECT count(DISTINCT model_id) FROM evaluations), "
            "(SELECT count(*) FROM jobs WHERE status = ?), "
            "(SELECT count(*) FROM jobs WHERE status = ?), (SELECT count(*) FROM experiments)",
            [JobStatus.RUNNING, JobStatus.QUEUED],
        ).fetchone()
    names = ("zoos", "models", "trees", "evaluations", "evaluated_models", "running_jobs", "queued_jobs",
             "experiments")
    return dict(zip(names, (int(v) for v in row), strict=True))
