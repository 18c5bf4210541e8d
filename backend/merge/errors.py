"""MergeError, torch-free so the registry (and through it the CLI's argument parser) can raise it."""


class MergeError(ValueError):
    """Inputs that cannot be merged; the message says which model and which key."""
