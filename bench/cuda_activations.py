"""How accurate the sigmoid and tanh inside torch.nn.LSTM are, on each device torch sees.

    python bench/cuda_activations.py [--points N]

One LSTM step with zero weights, zero initial state and a bias per unit isolates the gate
activations (torch packing, gate order i, f, g, o):

* tanh: b_i = 30 (sigmoid(30) is 1 in float32), b_g = z  ->  c_1 = tanh(z)
* sigmoid: b_g = 30 (tanh(30) is 1 in float32), b_i = z  ->  c_1 = sigmoid(z)

with one unit per z, z on a grid over [-12, 12] (``--points`` of them; the grid values are exact in
float32).  c_1 is compared with the float64 function of the same float32 z, in float32 ulps of the
exact value (``np.spacing``) and as an absolute error.  The same step runs through
``nn.LSTMCell`` (an elementwise ATen kernel on CUDA, not cuDNN) for contrast; on a CUDA device
``nn.LSTM`` runs cuDNN with ``torch.backends.cudnn.allow_tf32`` False (zero weights make the
products exact either way).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def measure(device: str, module: str, points: int) -> dict[str, tuple[float, float, float]]:
    z = np.linspace(-12.0, 12.0, points).astype(np.float32)
    hidden = points
    out = {}
    torch.backends.cudnn.allow_tf32 = False
    for function in ("tanh", "sigmoid"):
        bias = np.zeros((4, hidden), np.float32)
        if function == "tanh":
            bias[0], bias[2] = 30.0, z
            exact = np.tanh(z.astype(np.float64))
        else:
            bias[2], bias[0] = 30.0, z
            exact = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
        if module == "LSTM":
            lstm = torch.nn.LSTM(1, hidden, batch_first=True, device=device)
            names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        else:
            lstm = torch.nn.LSTMCell(1, hidden, device=device)
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        with torch.no_grad():
            for name in names:
                getattr(lstm, name).zero_()
            getattr(lstm, names[2]).copy_(torch.from_numpy(bias.reshape(-1)))
            x = torch.zeros((1, 1, 1), device=device)
            if module == "LSTM":
                _, (_, c) = lstm(x)
                c = c[0, 0]
            else:
                _, c = lstm(x[:, 0])
                c = c[0]
        got = c.double().cpu().numpy()
        ulp = np.abs(got - exact) / np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
        worst = int(np.argmax(ulp))
        out[function] = (float(ulp.max()), float(np.abs(got - exact).max()), float(z[worst]))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=4097)
    args = parser.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}" + (f", cuDNN {torch.backends.cudnn.version()}, "
                                          f"{torch.cuda.get_device_name(0)}" if "cuda" in devices else ""))
    for device in devices:
        for module in ("LSTM", "LSTMCell"):
            for function, (ulp, err, at) in measure(device, module, args.points).items():
                print(f"{device:5s} nn.{module:9s} {function:8s} max {ulp:10.1f} float32 ulp, "
                      f"max abs err {err:.3g} (worst at z = {at:+.4f})", flush=True)


if __name__ == "__main__":
    main()
