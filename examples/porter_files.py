"""The model files of the README's porter workflow, written by the frameworks themselves:

    python examples/porter_files.py DIR     # needs torch and Keras 3 (tox -e ports has both)

tagger.pt            torch.save of a tagger's state_dict: a 2-layer bidirectional nn.LSTM (input 32,
                     hidden 64) and a Linear head
encoder.keras        model.save of a keras.Sequential of two Bidirectional(LSTM(32)) on 16 features
partial.pt           the tagger's LSTM with bias_hh_l0 deleted (what `convert` must refuse to invent)

Seeded: the same files, and so the same README output, on every run.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path


def write(folder: Path) -> None:
    import numpy as np
    import torch

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tagger = torch.nn.Module()
    tagger.lstm = torch.nn.LSTM(32, 64, num_layers=2, bidirectional=True)
    tagger.head = torch.nn.Linear(128, 10)
    torch.save(tagger.state_dict(), folder / "tagger.pt")
    partial = {k: v for k, v in tagger.lstm.state_dict().items() if k != "bias_hh_l0"}
    torch.save(partial, folder / "partial.pt")

    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((None, 16))]
                               + [keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=True))
                                  for _ in range(2)])
    rng = np.random.default_rng(0)
    encoder.set_weights([rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in encoder.get_weights()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder.save(folder / "encoder.keras")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/porter_files.py DIR")
    write(Path(sys.argv[1]))
