"""The engine: pure algorithms on tensors (models, matching, merge, evaluate) plus the jobs that run them."""
