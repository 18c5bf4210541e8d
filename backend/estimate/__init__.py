"""How long a job will take: one source for every time estimate (Home, preset cards, Report, Runs, CLI).

- cost.py: the cost model, the work a job implies per phase (train, merge, evaluate) in each phase's unit,
- machine.py: seconds per unit on this machine (rates jobs measured, else a calibration, else defaults),
- jobs.py: the estimates, units × seconds per unit per phase plus overhead, as a range, for the work a job
  still has to do (what the store holds is free),
- text.py: an estimate in words ('about 3 min (2–5 min) — 12 of 16 models already stored').

Nothing here imports torch, numpy or scipy at import time (machine.py does where it times or counts threads),
so the job steps and torch-free callers may import the cost model and the text. The names below are
re-exported for callers; a test that patches one must patch it in the module that looks it up.
"""

from backend.estimate.cost import (
    arch_key,
    connectivity_pairs,
    connectivity_units,
    eval_passes,
    eval_units,
    interpolation_units,
    layer_sizes,
    merge_units,
    merged_nodes,
    split_sizes,
    strong_passes,
    train_units,
)
from backend.estimate.jobs import (
    estimate_breakdown,
    evaluate_estimate,
    interpolate_estimate,
    job_estimate,
    merge_estimate,
    train_estimate,
)
from backend.estimate.machine import (
    DEFAULT_RATES,
    TRAIN_MODEL_SECONDS,
    TRAIN_OVERHEAD,
    cached_rates,
    default_rates,
    forget_calibration,
    measure_rates,
    measured_rate,
    rates,
)
from backend.estimate.text import describe, describe_range, stored_text

__all__ = [
    "DEFAULT_RATES", "TRAIN_MODEL_SECONDS", "TRAIN_OVERHEAD", "arch_key", "cached_rates", "connectivity_pairs",
    "connectivity_units", "default_rates", "describe", "describe_range", "estimate_breakdown", "eval_passes",
    "eval_units", "evaluate_estimate", "forget_calibration", "interpolate_estimate", "interpolation_units",
    "job_estimate", "layer_sizes", "measure_rates", "measured_rate", "merge_estimate", "merge_units",
    "merged_nodes", "rates", "split_sizes", "stored_text", "strong_passes", "train_estimate", "train_units",
]
