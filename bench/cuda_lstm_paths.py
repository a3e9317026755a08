"""Which CUDA code path makes torch.nn.LSTM's float32 less accurate than on the CPU.

    python bench/cuda_lstm_paths.py

On a GPU machine (see bench/cuda_run.sh).  For D = H in (2, 16, 64, 128, 256) and the saturating
regime (B = 4, T = 16, an initial state, gate order ifgo; 4 cases each) it prints the worst error
of y, h and c as a multiple of the unscaled float32 tolerance (as bench/error_at_size.py) for:
torch on the CPU; on CUDA through cuDNN with TF32 off (``torch-cuda``); on CUDA with cuDNN
disabled (``torch.backends.cudnn.enabled = False``: ATen's own CUDA LSTM, a matrix product and a
fused elementwise cell per step).  Then the names of the CUDA kernels one cuDNN forward launches
(torch.profiler), for D = H = 16 and 256.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adapters.pytorch_adapter import TorchCudaAdapter, TorchLSTMAdapter  # noqa: E402
from bench.error_at_size import error_ratios  # noqa: E402
from conformance.harness.strategies import build_case  # noqa: E402
from reference import LSTMSpec  # noqa: E402


def worst(adapter, size: int, repeats: int = 4) -> float:
    out = 0.0
    for repeat in range(repeats):
        case = build_case(np.random.default_rng(1000 * size + repeat), LSTMSpec(gate_order="ifgo"), 4, 16, size,
                          size, regime="saturating", initial_state=True)
        out = max(out, *error_ratios(adapter, case).values())
    return out


def main():
    cpu, cuda = TorchLSTMAdapter(), TorchCudaAdapter()
    if cuda.setup_problem():
        print(cuda.setup_problem())
        return
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name(0)}")
    print(f"{'D = H':>6} {'CPU':>8} {'cuDNN':>8} {'no cuDNN':>9}")
    for size in (2, 16, 64, 128, 256):
        torch.backends.cudnn.enabled = True
        on = worst(cuda, size)
        torch.backends.cudnn.enabled = False
        off = worst(cuda, size)
        torch.backends.cudnn.enabled = True
        print(f"{size:6d} {worst(cpu, size):8.3f} {on:8.3f} {off:9.3f}", flush=True)
    for size in (16, 256):
        try:
            names = kernels(cuda, size)
            print(f"D = H = {size}: CUDA kernels of one cuDNN forward: " + "; ".join(n[:90] for n in names))
        except Exception as exc:  # the profiler's API moves between versions
            print(f"D = H = {size}: profiler failed: {type(exc).__name__}: {exc}")


def kernels(cuda, size: int) -> list[str]:
    """The CUDA kernels one forward of a D = H = ``size`` case launches."""
    case = build_case(np.random.default_rng(0), LSTMSpec(gate_order="ifgo"), 4, 16, size, size,
                      regime="saturating", initial_state=True)
    cuda.run(case)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        cuda.run(case)
        torch.cuda.synchronize()
    return sorted({e.key for e in prof.key_averages() if not e.key.startswith(("cuda", "aten::", "Activity"))})


if __name__ == "__main__":
    main()
