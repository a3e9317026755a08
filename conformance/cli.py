"""The command line: ``python -m conformance <subcommand> ...``.

Subcommands live in one table, :data:`SUBCOMMANDS`: name -> (help, module).  A subcommand is a
module of ``conformance.tools`` with ``add_arguments(parser)`` and ``run(args) -> exit status``,
imported only when it is used (so that ``report`` and ``convert`` need no Hypothesis).  To add one,
write the module and add its line here.

Exit statuses, the same for every subcommand (and printed by every ``-h``): 0 success / conforms /
a unique match; 1 does not conform / no match / a regression; 2 ambiguous (detect only); 3 a
usage, setup or input error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

EXIT_STATUSES = ("exit status: 0 success (conforms, a unique match, no regression); 1 does not conform, "
                 "no match or a regression; 2 ambiguous (detect only); 3 a usage, setup or input error")

#: name -> (help text, module with add_arguments(parser) and run(args))
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "setup": ("create the worker environment of a framework that needs an old CPython "
              "(cntk: CPython 3.6 + CNTK 2.7; tf1: CPython 3.7 + TensorFlow 1.15)", "conformance.tools.setup"),
    "detect": ("find the gate order, weight layouts, forget bias and recurrent activation that an LSTM "
               "callable MODULE:ATTR implements (exit 0 unique, 1 none, 2 ambiguous)", "conformance.tools.detect"),
    "check": ("check an LSTM callable MODULE:ATTR against the reference under a claimed convention, "
              "with the suite's properties (exit 0 conforms, 1 counterexample)", "conformance.tools.check"),
    "convert": ("convert LSTM weights between frameworks: model files (.safetensors, .pt, .keras, .h5, .onnx, "
                "TF checkpoints, .msgpack) and .npz; --list lists the LSTMs of a file",
                "conformance.tools.convert"),
    "port": ("convert a model file (--to FRAMEWORK IN OUT) and prove it: run the source and the output in their "
             "frameworks against the reference (exit 0 both conform, 1 not)", "conformance.tools.port"),
    "report": ("merge results/<backend>.json into the conformance matrix: terminal table, --markdown, "
               "--html; --baseline DIR: exit 1 on a regression", "conformance.tools.report"),
}


class _UsageErrorsExit3(argparse.ArgumentParser):
    """Usage errors exit 3 (2 is detect's "ambiguous")."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only`` (a subcommand's name), only that subcommand's module is imported."""
    parser = _UsageErrorsExit3(prog="python -m conformance", description="LSTM conformance harness",
                               epilog=EXIT_STATUSES)
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_UsageErrorsExit3)
    subparsers.required = True
    for name, (help_text, module) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text, epilog=EXIT_STATUSES)
        if only in (None, name):
            importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    return importlib.import_module(SUBCOMMANDS[args.command][1]).run(args)
