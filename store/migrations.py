"""Schema migrations: an ordered list of SQL steps, each applied once, recorded in `schema_version`.

Append a new `Migration` to `MIGRATIONS` to change the schema; never edit a shipped step. Each step runs
in its own transaction together with its `schema_version` row, so a crash mid-migration leaves the
previous version intact. JSON columns are TEXT holding canonical JSON (see store/jsonutil.py); TIMESTAMP
columns hold naive UTC. There are no foreign-key constraints (DuckDB cannot delete or update referenced
rows); the query modules check references instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_TABLES_V1 = (
    "CREATE SEQUENCE zoos_id_seq START 1",
    "CREATE SEQUENCE models_id_seq START 1",
    "CREATE SEQUENCE trees_id_seq START 1",
    "CREATE SEQUENCE merges_id_seq START 1",
    "CREATE SEQUENCE jobs_id_seq START 1",
    "CREATE SEQUENCE experiments_id_seq START 1",
    """CREATE TABLE zoos (
        id BIGINT PRIMARY KEY DEFAULT nextval('zoos_id_seq'),
        name TEXT NOT NULL,
        dataset TEXT NOT NULL,
        kind TEXT NOT NULL,              -- plain | l1 | l2
        config TEXT NOT NULL,            -- JSON: TrainConfig dict
        n_models INTEGER NOT NULL,
        key TEXT NOT NULL UNIQUE,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE models (
        id BIGINT PRIMARY KEY DEFAULT nextval('models_id_seq'),
        zoo_id BIGINT,
        kind TEXT NOT NULL,              -- trained | hierarchical | merge_many | average
        dataset TEXT NOT NULL,
        widths TEXT NOT NULL,            -- JSON list of hidden widths
        config TEXT NOT NULL,            -- JSON dict
        seed BIGINT,
        weights TEXT NOT NULL,           -- sha256 of the safetensors file
        tree_id BIGINT,
        level INTEGER NOT NULL DEFAULT 0,  -- 0 = unmerged
        node_index INTEGER,
        parents TEXT NOT NULL DEFAULT '[]',  -- JSON list of model ids
        seconds DOUBLE NOT NULL DEFAULT 0,
        train_loss DOUBLE,
        train_acc DOUBLE,
        key TEXT NOT NULL UNIQUE,
        created_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX models_tree_idx ON models (tree_id)",
    "CREATE INDEX models_zoo_idx ON models (zoo_id)",
    """CREATE TABLE trees (
        id BIGINT PRIMARY KEY DEFAULT nextval('trees_id_seq'),
        method TEXT NOT NULL,            -- hierarchical | merge_many | average
        leaves TEXT NOT NULL,            -- JSON list of model ids, in order
        config TEXT NOT NULL,            -- JSON dict
        key TEXT NOT NULL UNIQUE,
        root_model_id BIGINT,
        experiment_id BIGINT,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE merges (
        id BIGINT PRIMARY KEY DEFAULT nextval('merges_id_seq'),
        tree_id BIGINT NOT NULL,
        model_id BIGINT NOT NULL,
        method TEXT NOT NULL,
        lam DOUBLE,
        sweeps INTEGER,
        objective TEXT NOT NULL DEFAULT '[]',  -- JSON list: objective trace
        seconds DOUBLE NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX merges_tree_idx ON merges (tree_id)",
    """CREATE TABLE eval_configs (
        key TEXT PRIMARY KEY,
        config TEXT NOT NULL             -- JSON: EvalConfig dict
    )""",
    """CREATE TABLE evaluations (
        model_id BIGINT NOT NULL,
        eval_key TEXT NOT NULL,
        metric TEXT NOT NULL,
        param DOUBLE,
        value DOUBLE NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX evaluations_model_idx ON evaluations (model_id)",
    """CREATE TABLE jobs (
        id BIGINT PRIMARY KEY DEFAULT nextval('jobs_id_seq'),
        kind TEXT NOT NULL,
        spec TEXT NOT NULL,              -- JSON job spec
        key TEXT NOT NULL,
        status TEXT NOT NULL,            -- queued | running | done | failed | cancelled
        progress DOUBLE NOT NULL DEFAULT 0,
        stage TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        pid INTEGER,
        heartbeat TIMESTAMP,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        error TEXT,
        result TEXT,                     -- JSON
        created_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP
    )""",
    """CREATE TABLE experiments (
        id BIGINT PRIMARY KEY DEFAULT nextval('experiments_id_seq'),
        name TEXT NOT NULL,
        preset TEXT NOT NULL,
        dataset TEXT NOT NULL,
        spec TEXT NOT NULL,              -- JSON
        key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'created',
        job_id BIGINT,
        report_path TEXT,
        result TEXT,                     -- JSON
        created_at TIMESTAMP NOT NULL
    )""",
)

_CURVES = (
    """CREATE TABLE curve_configs (
        key TEXT PRIMARY KEY,
        config TEXT NOT NULL             -- JSON: ConnectivityConfig dict
    )""",
    """CREATE TABLE curves (
        model_a BIGINT NOT NULL,         -- θ(0)
        model_b BIGINT NOT NULL,         -- θ(1), before alignment
        curve_key TEXT NOT NULL,         -- ConnectivityConfig key
        align TEXT NOT NULL,             -- none | weight | activation
        repair BOOLEAN NOT NULL,
        split TEXT NOT NULL,             -- test | train
        lam DOUBLE,                      -- NULL for barrier rows
        metric TEXT NOT NULL,            -- accuracy | loss | loss_barrier | accuracy_barrier
        value DOUBLE NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
)

# A node carried up unchanged at an odd-count level of a hierarchical tree is a copy of its one parent, not a
# merge: flagged so that per-level statistics leave it out. Stores written before the flag existed are
# backfilled from the shape (a hierarchical node with exactly one parent). DuckDB cannot add a NOT NULL
# column to a table with an index, hence a plain DEFAULT (add_model always writes the value).
_CARRIED = (
    "ALTER TABLE models ADD COLUMN carried BOOLEAN DEFAULT FALSE",
    "UPDATE models SET carried = (kind = 'hierarchical' AND tree_id IS NOT NULL "
    "AND json_array_length(parents) = 1)",
)

_RATES_AND_CURVES = (
    """CREATE TABLE work_rates (
        phase TEXT NOT NULL,             -- train | merge | evaluate (backend/estimate.py's work units)
        arch TEXT NOT NULL,              -- layer sizes, e.g. 784-256-128-10
        device TEXT NOT NULL,            -- cpu | cuda
        threads INTEGER NOT NULL,        -- torch threads of the worker
        units DOUBLE NOT NULL,           -- work done, in the phase's units
        seconds DOUBLE NOT NULL,         -- wall time it took
        job_id BIGINT,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE train_curves (
        model_key TEXT NOT NULL,         -- the trained model's key (its row exists once training ends)
        zoo_id BIGINT,
        seed BIGINT,
        job_id BIGINT,
        epoch INTEGER NOT NULL,          -- 1-based
        loss DOUBLE NOT NULL,            -- mean training loss over the epoch (without the penalty)
        acc DOUBLE NOT NULL,             -- training accuracy over the epoch (augmented batches)
        created_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX train_curves_key_idx ON train_curves (model_key)",
)

_CURVE_STEPS = (  # DuckDB alters no column of a table with an index: drop it, alter, rebuild it
    "DROP INDEX train_curves_key_idx",
    "ALTER TABLE train_curves ALTER epoch TYPE DOUBLE",  # epochs done: 1.0, 2.0 at epoch ends; 0.25 within
    "ALTER TABLE train_curves ADD COLUMN step BIGINT",  # NULL: an epoch's mean; else the model's training step
    "CREATE INDEX train_curves_key_idx ON train_curves (model_key)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "zoos, models, trees, merges, eval_configs, evaluations, jobs, experiments", _TABLES_V1),
    Migration(2, "interpolation curves and barriers (curves, curve_configs)", _CURVES),
    Migration(3, "models.carried: nodes carried up unchanged in odd-count trees", _CARRIED),
    Migration(4, "work_rates (measured time per unit of work) and train_curves (loss/accuracy per epoch)",
              _RATES_AND_CURVES),
    Migration(5, "train_curves: points every N training steps (epoch as a fraction, step)", _CURVE_STEPS),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
    (version,) = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(version)


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every pending step in order; return the versions applied (empty when up to date)."""
    version = current_version(con)
    if version > LATEST_VERSION:
        raise RuntimeError(
            f"The lab store has schema version {version}, newer than this code understands "
            f"({LATEST_VERSION}); update the lab before opening it."
        )
    applied = []
    for step in MIGRATIONS:
        if step.version <= version:
            continue
        con.execute("BEGIN TRANSACTION")  # before any other transaction: migrate runs first on a new connection
        try:
            for sql in step.statements:
                con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?)",
                        [step.version, datetime.now(UTC).replace(tzinfo=None)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(step.version)
    return applied
