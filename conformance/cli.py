"""The command line: ``python -m conformance <subcommand> ...``.

Subcommands live in one table, :data:`SUBCOMMANDS`: name -> (help, add_arguments, run), one
function pair per subcommand.  To add one, write ``_add_<name>(parser)`` and ``_cmd_<name>(args)
-> int`` and register them with :func:`subcommand`; ``main`` builds the parser from the table.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

#: name -> (help text, add_arguments(parser), run(args) -> exit status)
SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                             Callable[[argparse.Namespace], int]]] = {}


def subcommand(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
               run: Callable[[argparse.Namespace], int]) -> None:
    """Register a subcommand (a later registration of the same name replaces the earlier one)."""
    SUBCOMMANDS[name] = (help, add_arguments, run)


# --------------------------------------------------------------------------------------------
# setup: worker environments for frameworks that need an old CPython

def _add_setup(parser: argparse.ArgumentParser) -> None:
    from adapters.worker_env import ENVS

    parser.add_argument("env", choices=sorted(ENVS),
                        help="the worker environment to create: " +
                             "; ".join(f"{e.name}: {e.framework} on CPython {'/'.join(e.pythons)}"
                                       for e in ENVS.values()))
    parser.add_argument("--python", metavar="PATH",
                        help="the interpreter to use (default: $LSTM_CONFORMANCE_<ENV>_PYTHON, "
                             "python3.X on PATH, then pyenv's versions)")
    parser.add_argument("--force", action="store_true", help="recreate the environment")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")


def _cmd_setup(args: argparse.Namespace) -> int:
    from adapters.worker_env import SetupError, env_dir, setup

    try:
        python = setup(args.env, python=args.python, force=args.force, quiet=args.quiet)
    except SetupError as exc:
        print(f"setup {args.env}: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"{args.env}: worker interpreter {python} (cache {env_dir(args.env)})")
    return 0


subcommand("setup", "create the worker environment of a framework that needs an old CPython "
                    "(cntk: CPython 3.6 + CNTK 2.7; tf1: CPython 3.7 + TensorFlow 1.15)",
           _add_setup, _cmd_setup)


# --------------------------------------------------------------------------------------------
# detect / check: a user's own LSTM callable (adapters/callable_adapter.py); convert: weights
# between frameworks.  Their exit statuses: 0 ok, 1 no / not conforming, 2 (detect) ambiguous, 3 error
# (usage errors of these subcommands exit 3 too, so that 2 always means "ambiguous").

def _add_detect(parser: argparse.ArgumentParser) -> None:
    from conformance.tools.detect import add_arguments

    add_arguments(parser)


def _cmd_detect(args: argparse.Namespace) -> int:
    from conformance.tools.detect import run

    return run(args)


def _add_check(parser: argparse.ArgumentParser) -> None:
    from conformance.tools.check import add_arguments

    add_arguments(parser)


def _cmd_check(args: argparse.Namespace) -> int:
    from conformance.tools.check import run

    return run(args)


def _add_convert(parser: argparse.ArgumentParser) -> None:
    from conformance.tools.convert import add_arguments

    add_arguments(parser)


def _cmd_convert(args: argparse.Namespace) -> int:
    from conformance.tools.convert import run

    return run(args)


subcommand("detect", "find the gate order, weight layouts, forget bias and recurrent activation that "
                     "an LSTM callable MODULE:ATTR implements (exit 0 unique, 1 none, 2 ambiguous)",
           _add_detect, _cmd_detect)
subcommand("check", "check an LSTM callable MODULE:ATTR against the reference under a claimed "
                    "convention (exit 0 conforms, 1 counterexample)",
           _add_check, _cmd_check)
subcommand("convert", "convert LSTM weights (.npz) between the packings and names of the frameworks",
           _add_convert, _cmd_convert)


# --------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance",
                                     description="LSTM conformance harness")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    subparsers.required = True
    for name, (help_text, add_arguments, _) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _, _, run = SUBCOMMANDS[args.command]
    return run(args)


# --------------------------------------------------------------------------------------------
# report: the conformance matrix from the result files (conformance/report.py)

def _add_report(parser: argparse.ArgumentParser) -> None:
    from conformance.tools.report import add_arguments

    add_arguments(parser)


def _cmd_report(args: argparse.Namespace) -> int:
    from conformance.tools.report import run

    return run(args)


subcommand("report", "merge results/<backend>.json into the conformance matrix: terminal table, "
                     "--markdown, --html; --baseline DIR: exit 1 on a new failure or drift beyond tolerance",
           _add_report, _cmd_report)
