"""Evaluation suite: one file per metric, pure functions (model, x, y, ...) -> numbers.

`suite.evaluate_model` runs the metrics an `EvalConfig` asks for and returns long-format rows.
"""
