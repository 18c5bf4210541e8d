"""`python -m backend {train,merge,evaluate,export,jobs,experiment} …` — every job the UI can start.

One module per subcommand, each exposing register(subparsers) and run(args) -> int. Bad input never
shows a traceback: it is one `error: …` line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

from backend.cli.common import ArgParser, UsageError, expected_errors

SUBCOMMANDS = ("train", "merge", "evaluate", "interpolate", "export", "jobs", "experiment", "store")


def build_parser() -> tuple[ArgParser, dict[str, object]]:
    parser = ArgParser(prog="python -m backend", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    handlers: dict[str, object] = {}
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"backend.cli.{name}")
        before = set(subparsers.choices)
        module.register(subparsers)
        for added in set(subparsers.choices) - before:
            handlers[added] = module
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    parser, handlers = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(handlers[args.command].run(args) or 0)
    except UsageError as err:
        return err.code
    except expected_errors() as err:
        if isinstance(err, OSError):  # '<file>: No space left on device', not '[Errno 28] …'
            from store.files import os_error_text

            print(f"error: {os_error_text(err)}", file=sys.stderr)
        else:
            print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
