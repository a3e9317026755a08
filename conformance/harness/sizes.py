"""Where frameworks switch code paths with size, and how far a run's cases reach (no Hypothesis
here: ``detect`` and ``check`` use it before any test machinery is loaded).

Kernels change code paths at SIMD widths of 8, 16 and 32 lanes, at GEMM block sizes, at thread
partitions over the batch (ONNX Runtime's MLAS, oneDNN, Eigen) and at chunk lengths of time
loops.  A bug past such a boundary (units past the first 16, a batch row past a partition, a step
past a chunk) passes every case below it, so cases are drawn at and around the boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Input and hidden sizes at and around the boundaries of 8-, 16- and 32-lane SIMD and of GEMM
#: blocks; batches around the partition thresholds 16, 32 and 64; steps around chunk lengths.
BOUNDARY_SIZES = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
                  511, 512, 513, 1024)
BOUNDARY_BATCHES = (1, 2, 3, 4, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256)
BOUNDARY_STEPS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257,
                  511, 512)


@dataclass(frozen=True)
class SizePlan:
    """How far a run's cases reach beyond the small shapes.

    share      one example in ``share`` draws its sizes at scale (0: none); the ``scale``
               property always does
    max_size   the largest input and hidden size drawn at scale
    max_batch  the largest batch
    max_steps  the largest number of steps
    max_work   the most multiply-adds of one example, B * T * 4H * (D + P) summed over layers
               and directions: sizes are drawn so that an example stays within it (batch and
               steps shrink where the layer is wide); 0: no limit
    unit_sizes the input and hidden sizes drawn at scale, ascending (empty: every one of
               BOUNDARY_SIZES up to max_size); a backend that pays for every new layer shape (an
               exporter: one model per structure) draws from a few, so that its exports are reused
    """

    share: int = 0
    max_size: int = 5
    max_batch: int = 4
    max_steps: int = 8
    max_work: float = 0.0
    unit_sizes: tuple[int, ...] = ()

    def __post_init__(self):
        for name in ("share", "max_size", "max_batch", "max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "share" else 1):
                raise ValueError(f"{name}: expected an int >= {0 if name == 'share' else 1}, got {value!r}")
        if not self.max_work >= 0:
            raise ValueError(f"max_work: expected a number >= 0, got {self.max_work!r}")
        sizes = self.unit_sizes
        if not isinstance(sizes, tuple) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                               for v in sizes) or list(sizes) != sorted(set(sizes)):
            raise ValueError(f"unit_sizes: expected a tuple of distinct positive ints in ascending "
                             f"order, got {sizes!r}")

    @staticmethod
    def sizes(choices, lo: int, hi: int, limit: int) -> list[int]:
        """The values of ``choices`` in [lo, max(hi, limit)], ascending; a fixed size (lo == hi,
        e.g. a decoder's batch that must equal its encoder's) stays fixed."""
        if lo == hi:
            return [lo]
        top = max(hi, limit)
        out = [v for v in choices if lo <= v <= top]
        return out or [lo]


#: No example at scale: the shapes of the properties as written.
SMALL = SizePlan()
