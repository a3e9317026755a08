"""adapters.litert_runtime.WeightTemplate: swapping weights into a converted flatbuffer gives the
bytes the converter writes for those weights, and a converter that computes anything from the
values is refused (no framework needed: stand-in converters that lay out bytes as a converter
does, with a header, the weights relocated and copied, and constants of their own)."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.litert_runtime import NotRelocatable, WeightTemplate, probe_weights

SHAPES = [(3, 8), (2, 8), (8,)]


def _weights(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(np.float32) for s in SHAPES]


def relocating(weights) -> bytes:
    """Header, the kernel transposed and split in four blocks in reverse order, the bias twice
    (a converter may copy a constant), a constant 1.0 and an odd-length tail."""
    kernel, recurrent, bias = (np.asarray(w, np.float32) for w in weights)
    blocks = np.split(kernel.T, 4)[::-1]
    parts = [np.array([7, 1, 2, 3], np.uint32).tobytes()] + [b.tobytes() for b in blocks]
    parts += [bias.tobytes(), np.float32(1.0).tobytes(), recurrent[:, ::-1].tobytes(), bias.tobytes(), b"xyz"]
    return b"".join(parts)


def folding(weights) -> bytes:
    """Stores the bias plus 1 (a fold): the bias elements are not stored as they are (with the
    probes' magnitudes, 2**20 and up, + 1 is 8 patterns on: the stride between probe patterns
    keeps it from reading as another element)."""
    kernel, recurrent, bias = (np.asarray(w, np.float32) for w in weights)
    return kernel.tobytes() + recurrent.tobytes() + (bias + np.float32(1)).tobytes()


def summarizing(weights) -> bytes:
    """Stores every weight as it is and also a value computed from them (a scale)."""
    flat = np.concatenate([np.ravel(w) for w in weights]).astype(np.float32)
    return flat.tobytes() + np.float32(np.abs(flat).max() / 127).tobytes()


def test_patched_bytes_are_the_converters_bytes():
    template = WeightTemplate(relocating, SHAPES)
    for seed in range(5):
        weights = _weights(seed)
        assert template.patch(weights) == relocating(weights)


def test_one_probe_template_patches_the_same():
    template = WeightTemplate(relocating, SHAPES, verify=False)
    weights = _weights(9)
    assert template.patch(weights) == relocating(weights)


def test_a_fold_is_refused():
    with pytest.raises(NotRelocatable, match="not stored as they are"):
        WeightTemplate(folding, SHAPES)


def test_a_value_dependent_byte_is_refused_by_the_second_probe():
    WeightTemplate(summarizing, SHAPES, verify=False)  # one probe cannot see it
    with pytest.raises(NotRelocatable, match="computed something from the weight values"):
        WeightTemplate(summarizing, SHAPES)


def test_probes_are_distinct_finite_large_and_the_second_is_another_order():
    first = np.concatenate([p.ravel() for p in probe_weights(SHAPES)])
    second = np.concatenate([p.ravel() for p in probe_weights(SHAPES, second=True)])
    for probe in (first, second):
        assert np.isfinite(probe).all() and len(np.unique(probe.view(np.uint32))) == probe.size
        assert (np.abs(probe) >= 2.0 ** 20).all()
    assert not set(first.view(np.uint32)) & set(second.view(np.uint32))
