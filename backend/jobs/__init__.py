"""Jobs: specs (what to run), steps (run against the store), runner (one job's lifecycle), queue (workers)."""

from backend.jobs.context import JobContext
from backend.jobs.spec import EvaluateSpec, ExperimentSpec, MergeSpec, TrainSpec, spec_from_dict

__all__ = ["EvaluateSpec", "ExperimentSpec", "JobContext", "MergeSpec", "TrainSpec", "spec_from_dict"]
