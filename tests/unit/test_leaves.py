"""One compatibility check for models merged or interpolated together (preflight, merge step, Merge builder)."""

from __future__ import annotations

from backend.leaves import compatibility_problem, widths_label


def test_compatible_models_have_no_problem_whichever_way_widths_arrive():
    rows = [{"dataset": "mnist", "widths": [8, 6]}, {"dataset": "mnist", "widths": "[8,6]"},
            {"dataset": "mnist", "widths": "8-6"}]  # a list, its stored JSON text, the models_table label
    assert compatibility_problem(rows, "merge") is None
    assert compatibility_problem([], "merge") is None
    assert widths_label("[8]") == widths_label([8]) == widths_label("8") == "8" and widths_label(None) == ""


def test_one_sentence_names_every_difference_with_the_verb():
    rows = [{"dataset": "mnist", "widths": "[16,16]"}, {"dataset": "fashion_mnist", "widths": [8, 6]}]
    problem = compatibility_problem(rows, "interpolate between")
    assert problem.startswith("cannot interpolate between models trained on different datasets "
                              "(mnist, fashion_mnist) and with different widths (16-16, 8-6)")  # in leaf order
    assert "\n" not in problem
    widths_only = compatibility_problem([{"dataset": "mnist", "widths": [8]}, {"dataset": "mnist", "widths": [4]}])
    assert widths_only.startswith("cannot merge models with different widths (8, 4)")
    assert "datasets" not in widths_only
