"""Speed of the NumPy reference LSTM against torch.nn.LSTM on the CPU, side by side in one process.

    python bench/bench_reference.py [--repeats-large N] [--repeats-small N] [--shapes NAME ...] [--rounds N]

Rows: forward (reference lstm_forward in float64 vs torch.nn.LSTM float32 under torch.no_grad)
and forward+backward (reference lstm_backward, which runs its own forward, vs torch forward plus
torch.autograd.grad of the same vector-Jacobian product: gradients of x, h0, c0 and every
weight).  Each timing is the median of N repeats after a warm-up; torch's thread count is left
at its default.  Ratio = reference / torch (below 1: the reference is faster).  The last column
times the float64 matrix products alone, in the shapes the reference computes them (the input
projection and one recurrent product a step; the backward adds one a step and the three weight
and input gradients): the floor of any float64 implementation, as a multiple of torch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference import LSTMParams, LSTMSpec, lstm_backward, lstm_forward  # noqa: E402
from adapters.packings import PACKINGS  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - the script is useless without torch
    sys.exit("bench_reference.py needs torch: pip install torch==2.13.0")

SHAPES = {"wide-batch": (64, 256, 512, 512), "wide-layer": (8, 128, 1024, 1024),
          "large": (32, 64, 256, 256), "small": (2, 5, 4, 3)}  # B, T, D, H
TARGETS = {("wide-batch", "forward"): 3.0, ("wide-batch", "backward"): 3.0,
           ("wide-layer", "forward"): 3.0, ("wide-layer", "backward"): 3.0,
           ("large", "forward"): 3.0, ("large", "backward"): 4.0,
           ("small", "forward"): 1.0, ("small", "backward"): 1.0}


def median_time(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_case(batch, steps, d, hidden, seed=0):
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(hidden)
    params = LSTMParams(
        kernel=rng.uniform(-scale, scale, (d, 4 * hidden)),
        recurrent_kernel=rng.uniform(-scale, scale, (hidden, 4 * hidden)),
        bias=rng.uniform(-scale, scale, 4 * hidden),
        recurrent_bias=rng.uniform(-scale, scale, 4 * hidden),
    )
    x = rng.normal(size=(batch, steps, d))
    dy = rng.normal(size=(batch, steps, hidden))
    return params, x, dy


def torch_lstm(params: LSTMParams, d: int, hidden: int):
    lstm = torch.nn.LSTM(d, hidden, batch_first=True)
    weights = PACKINGS["torch"].to_native(params, "ifgo")
    with torch.no_grad():
        for name, value in weights.items():
            getattr(lstm, name + "_l0").copy_(torch.from_numpy(value.astype(np.float32)))
    return lstm


def run(repeats_large: int, repeats_small: int, shapes=tuple(SHAPES), rounds: int = 3, report=None):
    spec = LSTMSpec()
    rows = []
    for label in shapes:
        batch, steps, d, hidden = SHAPES[label]
        repeats = repeats_small if label == "small" else repeats_large
        warmup = max(3, repeats // 5) if label == "small" else 1
        params, x, dy = make_case(batch, steps, d, hidden)
        lstm = torch_lstm(params, d, hidden)
        x_t = torch.from_numpy(x.astype(np.float32))
        dy_t = torch.from_numpy(dy.astype(np.float32))
        h0 = torch.zeros(1, batch, hidden)
        c0 = torch.zeros(1, batch, hidden)

        # Sanity: both compute the same thing (float32 vs float64 tolerance).
        y_ref, _ = lstm_forward(x, params, spec)
        with torch.no_grad():
            y_torch, _ = lstm(x_t, (h0, c0))
        err = float(np.max(np.abs(y_ref - y_torch.numpy())))
        if err > 1e-4:
            raise SystemExit(f"{label}: reference and torch disagree (max abs error {err:.3g})")

        def ref_forward():
            lstm_forward(x, params, spec)

        def torch_forward():
            with torch.no_grad():
                lstm(x_t, (h0, c0))

        def ref_backward():
            lstm_backward(x, params, spec, dy=dy)

        weights = list(lstm.parameters())

        def torch_backward():
            xg = x_t.detach().requires_grad_(True)
            hg = h0.detach().requires_grad_(True)
            cg = c0.detach().requires_grad_(True)
            y, _ = lstm(xg, (hg, cg))
            torch.autograd.grad(y, [xg, hg, cg, *weights], grad_outputs=dy_t)

        # The floor of any float64 implementation: its matrix products alone (what the
        # reference's forward and backward must compute, in the same shapes).
        rec = np.ascontiguousarray(params.recurrent_kernel)
        rec_t = np.ascontiguousarray(rec.T)
        x2 = np.ascontiguousarray(x).reshape(batch * steps, d)
        h = np.zeros((batch, hidden))
        dz = np.ones((batch * steps, 4 * hidden))
        h_prev = np.ones((batch * steps, hidden))

        def gemms_forward():
            x2 @ params.kernel
            for _ in range(steps):
                h @ rec

        def gemms_backward():
            gemms_forward()
            g = np.zeros((batch, 4 * hidden))
            for _ in range(steps):
                g @ rec_t
            x2.T @ dz
            h_prev.T @ dz
            dz @ params.kernel.T

        floors = {"forward": gemms_forward, "backward": gemms_backward}
        for kind, ref_fn, torch_fn in (("forward", ref_forward, torch_forward),
                                       ("backward", ref_backward, torch_backward)):
            # Interleave the two so that drifting machine load hits both alike.
            t_ref, t_torch = [], []
            for _ in range(rounds):
                t_ref.append(median_time(ref_fn, repeats, warmup))
                t_torch.append(median_time(torch_fn, repeats, warmup))
            floor = median_time(floors[kind], repeats, warmup)
            row = (label, (batch, steps, d, hidden), kind, min(t_ref), min(t_torch), floor)
            rows.append(row)
            if report:
                report(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats-large", type=int, default=5)
    parser.add_argument("--repeats-small", type=int, default=500)
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES),
                        help="the shapes to time (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best counts (default 3)")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {platform.machine()}")
    print(f"median of {args.repeats_large} (large) / {args.repeats_small} (small) repeats, "
          f"best of 3 interleaved rounds")
    print("OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)") + ", OPENBLAS_L2_SIZE="
          + os.environ.get("OPENBLAS_L2_SIZE", "(unset)"))
    load_before = os.getloadavg()[0]
    header = (f"{'shape (B,T,D,H)':<20} {'pass':<18} {'reference f64':>14} {'torch f32':>12} {'ratio':>7} "
              f"{'target':>7}   {'f64 GEMMs alone':>16}")
    print(header)
    print("-" * len(header), flush=True)
    failed = []

    def report(row):
        label, shape, kind, t_ref, t_torch, floor = row
        ratio = t_ref / t_torch
        target = TARGETS[(label, kind)]
        ok = ratio <= target
        if not ok:
            failed.append(label)
        name = "forward" if kind == "forward" else "forward+backward"
        print(f"{str(shape):<20} {name:<18} {_fmt(t_ref):>14} {_fmt(t_torch):>12} {ratio:>6.2f}x "
              f"{'<=' if ok else '> '}{target:g}x   {_fmt(floor):>10} ({floor / t_torch:.2f}x)", flush=True)

    run(args.repeats_large, args.repeats_small, args.shapes, args.rounds, report)
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")
    if load_before > 0.75 * (os.cpu_count() or 1):  # "after" includes this benchmark's threads
        print("WARNING: other processes were using the CPU; OpenBLAS and torch's threads slow "
              "down unevenly under contention, so these ratios are not reliable")
    return 1 if failed else 0


def _fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


if __name__ == "__main__":
    sys.exit(main())
