"""How a backend's float32 error grows with size, as a multiple of the unscaled tolerance table.

    python bench/error_at_size.py BACKEND [--grid full|quick] [--repeats N] [--json OUT]

Run it in the backend's tox env (e.g. ``.tox/torch/bin/python bench/error_at_size.py torch``).
For each shape (D = H, T, B) and each value regime of the strategies, it builds cases with
``strategies.build_case`` (gate order ifgo, an initial state where the backend takes one), runs
them through the adapter and compares y and the final h and c with the reference.  The number
printed is the worst ``error / tolerance`` over the repeats, where the tolerance is the dtype's
row of ``tolerances.TOLERANCES`` *without* the size factors (``reduction_factor``,
``steps_factor``): what those factors must cover.  The constants in conformance/harness/
tolerances.py were derived from these numbers (docs/benchmarks.md, "Error at size").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adapters import load_adapter  # noqa: E402
from adapters.reference_adapter import reference_output  # noqa: E402
from conformance.harness.compare import compare  # noqa: E402
from conformance.harness.strategies import REGIMES, build_case  # noqa: E402
from conformance.harness.tolerances import TOLERANCES  # noqa: E402
from reference import LSTMSpec  # noqa: E402

#: (D = H, T, B): the reduction length alone first, then the steps, then both.
GRIDS = {
    "full": [(16, 16, 4), (128, 16, 4), (256, 16, 4), (512, 16, 4), (1024, 16, 4), (64, 128, 4), (64, 512, 4),
             (256, 256, 4), (1024, 128, 4)],
    "quick": [(16, 16, 4), (256, 16, 4), (1024, 16, 2), (64, 512, 2)],
}


def error_ratios(adapter, case) -> dict[str, float]:
    """Error / unscaled tolerance of y and the final h and c of ``adapter`` on ``case``."""
    out = adapter.run(case)
    expected = reference_output(case, reverse_time_order=adapter.capabilities.reverse_time_order)
    tolerance = TOLERANCES[case.dtype]
    pairs = {"y": (out.y, expected.y), "h": (out.final[0][0], expected.final[0][0]),
             "c": (out.final[0][1], expected.final[0][1])}
    return {key: compare(key, actual, wanted, tolerance).ratio for key, (actual, wanted) in pairs.items()}


def measure(backend: str, grid: str, repeats: int):
    adapter = load_adapter(backend)
    dtype = "float32" if "float32" in adapter.capabilities.dtypes else adapter.capabilities.dtypes[0]
    given_state = "initial_state" in adapter.capabilities.features
    rows = []
    for size, steps, batch in GRIDS[grid]:
        for regime in REGIMES:
            worst = {"y": 0.0, "h": 0.0, "c": 0.0}
            started = time.perf_counter()
            for repeat in range(repeats):
                rng = np.random.default_rng(size * 7 + steps + 1000 * repeat)
                case = build_case(rng, LSTMSpec(gate_order="ifgo"), batch, steps, size, size, regime=regime,
                                  initial_state=given_state, dtype=dtype)
                for key, ratio in error_ratios(adapter, case).items():
                    worst[key] = max(worst[key], ratio)
            seconds = time.perf_counter() - started
            row = {"backend": backend, "H": size, "T": steps, "B": batch, "regime": regime, **worst,
                   "seconds": round(seconds, 2)}
            rows.append(row)
            print(f"{backend} D=H={size:5d} T={steps:4d} B={batch:3d} {regime:12s} "
                  f"y {worst['y']:7.3f}  h {worst['h']:7.3f}  c {worst['c']:7.3f}  ({seconds:.1f} s)", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backend", help="a registered backend name (adapters.BACKENDS)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full")
    parser.add_argument("--repeats", type=int, default=2, help="cases per shape and regime (default 2)")
    parser.add_argument("--json", metavar="OUT", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected an int >= 1, got {args.repeats}")
    rows = measure(args.backend, args.grid, args.repeats)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
