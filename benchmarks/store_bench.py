"""Store speed: connect()+query, list_models on 2000 rows, evaluations on 100k rows.

Also measures the design choice in store/db.py side by side: ATTACH/DETACH on a per-process in-memory
instance vs opening a fresh DuckDB instance per access.
    .venv/bin/python benchmarks/store_bench.py
"""

from __future__ import annotations

import os
import tempfile
import time

import torch

torch.set_num_threads(1)


def best_ms(fn, repeat: int = 15) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return 1e3 * times[len(times) // 2]  # median


def main() -> None:
    os.environ["REBASIN_HOME"] = tempfile.mkdtemp(prefix="rebasin-bench-")
    import duckdb

    from store import db
    from store.evaluations import evaluations, save_evaluations
    from store.models import add_model, list_models
    from store.paths import db_path
    from store.weights import save_weights

    h = save_weights({"w": torch.zeros(2)})
    n_models, rows_per_model = 2000, 50
    start = time.perf_counter()
    with db.connect():  # nested store calls share this one attach
        ids = [add_model(kind="trained", dataset="cifar10", widths=[512, 512, 512, 256], config={"lr": 1e-3},
                         weights=h, key=f"m{i}", seed=i, train_acc=0.5) for i in range(n_models)]
    per_add = (time.perf_counter() - start) / n_models * 1e3
    rows = [(f"metric{j % 10}", float(j // 10), 0.5) for j in range(rows_per_model)]
    start = time.perf_counter()
    with db.connect():
        for mid in ids[:100]:
            save_evaluations(mid, "ek", rows)
    per_save = (time.perf_counter() - start) / 100 * 1e3
    with db.connect() as con:  # the other 1900 models' rows in one statement, to keep setup short
        con.execute("INSERT INTO evaluations SELECT m.id, 'ek', 'metric' || (j % 10), j // 10, 0.5, now()::TIMESTAMP "
                    "FROM models m, range(?) r(j) WHERE m.id > ?", [rows_per_model, ids[99]])
    print(f"add_model (inside one connect): {per_add:.1f} ms each; "
          f"save_evaluations of {rows_per_model} rows: {per_save:.1f} ms each")

    def attach_query():
        with db.connect() as con:
            con.execute("SELECT count(*) FROM models").fetchone()

    def fresh_instance_query():
        with db.connect():  # same lock; then a fresh DuckDB instance as a plain duckdb.connect would do
            pass
        con = duckdb.connect(str(db_path()))
        con.execute("SELECT count(*) FROM models").fetchone()
        con.close()

    attach_ms, fresh_ms = best_ms(attach_query), best_ms(fresh_instance_query)
    print(f"connect()+count(*)            {attach_ms:7.1f} ms   (fresh instance per access: {fresh_ms:7.1f} ms, "
          f"ratio {fresh_ms / attach_ms:.1f}x)")
    print(f"list_models() 2000 rows        {best_ms(list_models):7.1f} ms")
    n_rows = len(evaluations())
    print(f"evaluations() {n_rows} rows      {best_ms(evaluations):7.1f} ms")
    some = ids[::10]
    print(f"evaluations(200 ids) 10k rows  {best_ms(lambda: evaluations(model_ids=some, eval_key='ek')):7.1f} ms")
    print(f"list_models(ids=200)           {best_ms(lambda: list_models(ids=some)):7.1f} ms")


if __name__ == "__main__":
    main()
