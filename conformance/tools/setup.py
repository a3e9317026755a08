"""``python -m conformance setup cntk|tf1|mxnet|chainer``: create (or verify, fast) the worker environment of a
framework that needs an old CPython (adapters/worker_env.py says exactly what is missing)."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_ERROR = 0, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    from adapters.worker_env import SetupError, env_dir, setup

    try:
        python = setup(args.env, python=args.python, force=args.force, quiet=args.quiet)
    except SetupError as exc:
        print(f"setup {args.env}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not args.quiet:
        print(f"{args.env}: worker interpreter {python} (cache {env_dir(args.env)})")
    return EXIT_OK
