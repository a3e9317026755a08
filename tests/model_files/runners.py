"""Each format's file run by its framework's own loader (the tests' independent check of a
written file): torch ``nn.LSTM.load_state_dict`` of a .safetensors, ONNX Runtime on an .onnx as
written, Keras 3 ``load_weights`` of a .weights.h5 into the model it was written for, Flax
``msgpack_restore`` into ``nn.RNN(nn.LSTMCell)`` layers.

``run(path, x, state)``: x (B, T, D) float32, state None or [(h0, c0)] per layer and direction in
h_n order; returns y (B, T, dirs x H) and, where the runner has them, the final states."""

from __future__ import annotations

import numpy as np


def torch_file(path, input_size, hidden, layers, bidirectional):
    import torch
    from safetensors.torch import load_file

    lstm = torch.nn.LSTM(input_size, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    lstm.load_state_dict(load_file(str(path)), strict=True)

    def run(x, state=None):
        init = None
        if state is not None:
            init = tuple(torch.from_numpy(np.stack([s[j] for s in state]).astype(np.float32)) for j in (0, 1))
        with torch.no_grad():
            y, (h, c) = lstm(torch.from_numpy(np.asarray(x, np.float32)), init)
        return y.numpy(), list(zip(h.numpy(), c.numpy()))
    return run


def onnx_file(path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x, state=None):
        feeds = {"X": np.ascontiguousarray(np.asarray(x, np.float32).transpose(1, 0, 2))}
        if state is not None:
            feeds["initial_h"] = np.stack([h for h, _ in state]).astype(np.float32)
            feeds["initial_c"] = np.stack([c for _, c in state]).astype(np.float32)
        y, h, c = session.run(["Y", "Y_h", "Y_c"], feeds)
        return y.transpose(1, 0, 2), list(zip(h, c))
    return run


def keras_model(input_size, hidden, layers, bidirectional, **options):
    import keras

    def lstm():
        return keras.layers.LSTM(hidden, return_sequences=True, **options)
    return keras.Sequential([keras.Input((None, input_size))]
                            + [keras.layers.Bidirectional(lstm()) if bidirectional else lstm() for _ in range(layers)])


def keras_file(path, input_size, hidden, layers, bidirectional, **options):
    model = keras_model(input_size, hidden, layers, bidirectional, **options)
    model.load_weights(str(path))

    def run(x, state=None):
        assert state is None, "a keras.Sequential takes no initial state"
        import keras

        return np.asarray(keras.ops.convert_to_numpy(model(np.asarray(x, np.float32)))), None
    return run


def flax_file(path, input_size, hidden, layers, bidirectional):
    import jax.numpy as jnp
    from flax import linen as nn
    from flax.serialization import msgpack_restore

    tree = msgpack_restore(open(path, "rb").read())
    names = ["forward", "backward"] if bidirectional else [None]

    def cell_params(k, d):
        node = tree
        if layers > 1 or bidirectional:
            node = node[f"layer{k}"]
        if d is not None:
            node = node[d]
        return {"params": {"cell": node}}

    def run(x, state=None):
        y = jnp.asarray(x, jnp.float32)
        finals = []
        for k in range(layers):
            outs = []
            for j, d in enumerate(names):
                rnn = nn.RNN(nn.LSTMCell(hidden), reverse=d == "backward", keep_order=True, return_carry=True)
                carry = None
                if state is not None:
                    h0, c0 = state[k * len(names) + j]
                    carry = (jnp.asarray(c0, jnp.float32), jnp.asarray(h0, jnp.float32))
                (c, h), out = rnn.apply(cell_params(k, d), y, initial_carry=carry)
                outs.append(out)
                finals.append((np.asarray(h), np.asarray(c)))
            y = jnp.concatenate(outs, axis=-1)
        return np.asarray(y), finals
    return run
