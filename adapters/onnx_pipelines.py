"""Pipelines that end in ONNX Runtime: a source framework's LSTM (its adapter's own model building
and weight loading), a converter or exporter that writes an ONNX model, and that model run by
``onnxruntime`` (``onnxruntime_adapter.inference_session``: CPU execution provider, one thread).

What is tested is the artifact a user deploys: the exported model with its weights baked in as
initializers, run by ORT, which folds what it can and runs its LSTM kernel on constant weights.

Exports are slow (the torch.onnx dynamo exporter and tf2onnx take seconds), and every drawn
example has new weights, so a pipeline exports once per *structure* (what changes the graph:
dtype, sizes, layers, direction, which inputs exist; never the batch or the time axis, which are
dynamic) with **tagged weights**, and learns from the exported model where each weight element
went:

* every native weight element gets a distinct tag value, a float of magnitude in [1, 2) whose
  sign and odd mantissa encode its index (scrambled; round constants such as 1.0, 1.5 or 1.25,
  which converters write as clip bounds and activation constants, have even mantissas and are
  never tags; indices beyond the number of weight elements are not tags either);
* a constant tensor of the exported model (an initializer, a Constant node, the same inside a
  Loop body) whose elements are tags (or exact zeros: a bias the converter adds, such as ONNX's
  Rb for a one-bias framework) is a *placement*: element k holds weight element ``index[k]``.
  Every other tensor is kept as the converter wrote it;
* for each example the case's weights (read back from the source model after the source adapter
  loaded them) are written into the placements, and the model is run.  A converter that does
  arithmetic on weights (sums two biases, scales a kernel) leaves values that are neither tags
  nor zeros: that structure is then exported again for every example, with the real weights.

Placement is only valid if the converter moves weights without looking at their values.  Each
process checks it against a real export with real weights for the first example of each kind of
product (``describe_graph``: the LSTM operator, a Loop of so many operators, ...): the two
models must have the same graph and bit-identical constants
(:meth:`OnnxPipeline._placement_problems`); where they differ, the converter looked at weight values
and that kind of product is exported with each example's own weights from then on (the result's
``produced`` says so).

Exported models are kept on disk under ``<cache>/onnx-exports/<backend>/`` (the cache directory of
``adapters.worker_env.cache_dir``), keyed by the structure and the versions of every package of
the pipeline, so that a second run exports nothing.  A converter's refusal is kept the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections import Counter

import numpy as np

from .base import Adapter, BrokenContract, Case, Output, Unsupported, installed_versions
from .onnxruntime_adapter import inference_session

#: Bump when the way models are exported or tagged changes (invalidates the disk cache).
CACHE_SCHEMA = 2

#: Tag encoding per dtype: (unsigned view, mantissa bits, exponent mask, exponent of [1, 2)).
_TAG_FORMATS = {
    np.dtype(np.float32): (np.uint32, 23, 0x7F800000, 0x3F800000),
    np.dtype(np.float16): (np.uint16, 10, 0x7C00, 0x3C00),
}
#: Odd multipliers that scramble indices into mantissas (any odd number is a bijection mod 2^m).
_SCRAMBLE = {23: 0x2F0B3D, 10: 0x2C5}


def tag_capacity(dtype) -> int:
    """How many weight elements can carry distinct tags in ``dtype`` (0: no tags in it): two signs
    times the odd mantissas."""
    fmt = _TAG_FORMATS.get(np.dtype(dtype))
    return 0 if fmt is None else 1 << fmt[1]


def make_tags(shapes: list[tuple[int, ...]], dtype) -> list[np.ndarray]:
    """Arrays of the given shapes whose elements are the tags of 0, 1, 2, ... in order.

    A tag is +-(1 + m / 2^bits) with an odd mantissa m: the sign is the index's lowest bit, m the
    scrambled rest.  Round constants that converters write into graphs (1.0, 1.5, 1.25, clip
    bounds, activation slopes) have even mantissas and are never read as tags."""
    dtype = np.dtype(dtype)
    uint, bits, _, one = _TAG_FORMATS[dtype]
    total = int(sum(int(np.prod(s)) for s in shapes))
    if total > tag_capacity(dtype):
        raise ValueError(f"shapes: at most {tag_capacity(dtype)} weight elements can be tagged in "
                         f"{dtype}, got {total}")
    index = np.arange(total, dtype=np.uint64)
    half = np.uint64((1 << (bits - 1)) - 1)
    mantissa = ((((index >> np.uint64(1)) * np.uint64(_SCRAMBLE[bits])) & half) << np.uint64(1)) | np.uint64(1)
    sign = (index & np.uint64(1)) << np.uint64(8 * dtype.itemsize - 1)
    flat = (np.uint64(one) | mantissa | sign).astype(uint).view(dtype)
    out, start = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(flat[start:start + n].reshape(shape))
        start += n
    return out


def read_tags(values: np.ndarray, total: int) -> np.ndarray:
    """Inverse of :func:`make_tags`: the index of each element of ``values``, -1 where it is not
    a tag of an index below ``total``."""
    dtype = values.dtype
    uint, bits, exponent, one = _TAG_FORMATS[dtype]
    raw = np.ascontiguousarray(values).view(uint).astype(np.uint64).ravel()
    sign_bit = np.uint64(8 * dtype.itemsize - 1)
    mantissa = raw & np.uint64((1 << bits) - 1)
    is_tag = ((raw & np.uint64(exponent)) == np.uint64(one)) & ((mantissa & np.uint64(1)) == np.uint64(1))
    half = np.uint64((1 << (bits - 1)) - 1)
    inverse = np.uint64(pow(_SCRAMBLE[bits], -1, 1 << (bits - 1)))
    index = (((mantissa >> np.uint64(1)) * inverse) & half) * np.uint64(2) + (raw >> sign_bit)
    index = np.where(is_tag, index.astype(np.int64), -1)
    return np.where(index < total, index, -1)


def model_tensors(graph):
    """Every constant tensor of ``graph`` in a fixed order, as (where, TensorProto): its
    initializers, the ``value`` of its Constant nodes, and the same inside subgraphs (a Loop or
    Scan body, If branches), where converters also put weights."""
    for init in graph.initializer:
        yield f"{graph.name}/{init.name}", init
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value":
                yield f"{graph.name}/{node.name or node.output[0]}:value", attr.t
            elif attr.type == attr.GRAPH:
                yield from model_tensors(attr.g)
            elif attr.type == attr.GRAPHS:
                for g in attr.graphs:
                    yield from model_tensors(g)


class Placement:
    """Where the converter put each weight element: for each tensor of the model (by its position
    in :func:`model_tensors`) that holds tags, (shape, dtype, index) with index -1 for an exact
    zero the converter wrote itself.  ``arithmetic`` names tensors with other values among tags."""

    def __init__(self, model, total: int):
        from onnx import numpy_helper

        self.slots: dict[int, tuple[tuple[int, ...], np.dtype, np.ndarray]] = {}
        self.arithmetic: list[str] = []
        for position, (where, tensor) in enumerate(model_tensors(model.graph)):
            values = numpy_helper.to_array(tensor)
            if values.dtype not in _TAG_FORMATS or values.size == 0:
                continue
            index = read_tags(values, total)
            tagged = index >= 0
            if not tagged.any():
                continue
            if (~tagged & (values.ravel() != 0)).any():
                self.arithmetic.append(where)
            self.slots[position] = (values.shape, values.dtype, index)

    def bind(self, model, weights: list[np.ndarray]) -> None:
        """Write ``weights`` (the source's native arrays, in tag order) into ``model``'s placed
        tensors, in place."""
        from onnx import numpy_helper

        flat = np.concatenate([np.ravel(w) for w in weights] + [np.zeros(1)])  # index -1: the zero
        for position, (_, tensor) in enumerate(model_tensors(model.graph)):
            slot = self.slots.get(position)
            if slot is not None:
                shape, dtype, index = slot
                tensor.CopyFrom(numpy_helper.from_array(flat[index].astype(dtype).reshape(shape), tensor.name))


def static_steps(model) -> int | None:
    """The fixed length of the time axis (axis 1) of the model's first input, None if dynamic."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else None


def describe_graph(model) -> str:
    """What a converter produced, for ``Output.produced``: the ONNX LSTM operator, a Loop or Scan
    (a loop the runtime interprets step by step), or unrolled operators."""
    ops = Counter(node.op_type for node in model.graph.node)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "?")
    if ops["LSTM"]:
        return f"ONNX LSTM op (opset {opset})"
    for loop in ("Loop", "Scan"):
        if ops[loop]:
            body = sum(len(a.g.node) for node in model.graph.node if node.op_type == loop
                       for a in node.attribute if a.type == a.GRAPH)
            return f"{loop} with {body} ops in its body (opset {opset})"
    return f"unrolled: {sum(ops.values())} ops (opset {opset})"


#: The input and hidden sizes that a pipeline paying an export per layer shape draws at scale
#: (:func:`export_size_plan`): each one past a boundary where kernels switch code paths (16- and
#: 32-lane SIMD, 128-wide GEMM blocks), so that the ``scale`` property still crosses them.
EXPORT_UNIT_SIZES = (17, 33, 129)


def export_size_plan(plan):
    """``plan`` (a conformance.harness.strategies.SizePlan) narrowed for a pipeline that exports
    one model per structure at seconds each: examples at scale only in the ``scale`` property
    (``share`` 0; every other property keeps its small shapes), with input and hidden sizes from
    :data:`EXPORT_UNIT_SIZES` as far as the plan reaches, so that a few layer shapes are exported
    once and reused; batch and steps, dynamic axes of the exported models, as the plan draws them.
    A plan that reaches none of those sizes only loses its share."""
    from dataclasses import replace

    sizes = tuple(s for s in EXPORT_UNIT_SIZES
                  if s <= plan.max_size and (not plan.unit_sizes or s in plan.unit_sizes))
    return replace(plan, share=0, unit_sizes=sizes) if sizes else replace(plan, share=0)


class OnnxPipeline(Adapter):
    """Base of the pipelines into ONNX Runtime (see the module docstring).

    A subclass composes its source adapter and says, through these hooks:

    ``_structure(case)``     what changes the exported graph (the export cache key)
    ``_load(case)``          the source model with the case's weights, as the source adapter builds
                             and loads it (a handle the other hooks understand)
    ``_weights(handle)``     its native weight arrays, in a fixed order; ``_assign(handle, arrays)``
    ``_export(handle, case)`` the ONNX ModelProto the converter writes (Unsupported with the
                             converter's own message when it refuses)
    ``_feeds(case, handle)`` the exported model's inputs; ``_output(case, handle, results)``: the
                             Output of what ORT returned
    """

    converter = "?"  # the converter's distribution (its version is recorded)
    #: Distributions whose versions key the disk cache and are recorded in ``describe()``.
    packages: tuple[str, ...] = ("onnx", "onnxruntime")

    def __init__(self):
        self._exports: dict = {}
        self._verified: set[str] = set()  # the products (describe_graph) whose placement was checked
        #: The products whose placement failed that check -> why (exported per example instead).
        self._unplaceable: dict[str, str] = {}
        #: The length of the sample to export with when the converter makes time static (None:
        #: the subclass's own sample length).
        self.sample_steps: int | None = None

    # ------------------------------------------------------------------ hooks

    def _structure(self, case: Case) -> tuple:
        raise NotImplementedError

    def _load(self, case: Case):
        raise NotImplementedError

    def _weights(self, handle) -> list[np.ndarray]:
        raise NotImplementedError

    def _assign(self, handle, arrays: list[np.ndarray]) -> None:
        raise NotImplementedError

    def _export(self, handle, case: Case):
        raise NotImplementedError

    def _feeds(self, case: Case, handle) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _output(self, case: Case, handle, results: list[np.ndarray]) -> Output:
        raise NotImplementedError

    # ------------------------------------------------------------------ versions, description

    def versions(self) -> dict[str, str]:
        return installed_versions(self.packages, missing="not installed")

    def describe(self) -> dict:
        out = super().describe()
        out["pipeline"] = {"converter": self.converter, "versions": self.versions()}
        return out

    def identity(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions().items())
        return f"{self.api} ({versions})"

    # ------------------------------------------------------------------ exports

    def _cache_file(self, key: tuple):
        from .worker_env import cache_dir

        text = json.dumps([CACHE_SCHEMA, self.name, self.versions(), repr(key)])
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return cache_dir() / "onnx-exports" / self.name / digest

    def _exported(self, case: Case, handle, native: list[np.ndarray]):
        """(model, its Placement or None, produced, sample steps) for the case's structure; raises
        Unsupported when the converter refused it.  Sample steps: the length the structure must be
        exported with (None: the subclass's own sample), set when the converter made time static."""
        key = self._structure(case)
        if key not in self._exports:
            self._exports[key] = self._load_or_export(handle, case, native, key)
        entry = self._exports[key]
        steps = None if isinstance(entry, str) else static_steps(entry[0])
        if steps is not None and steps != case.steps:
            # The converter fixed the time axis to the sample's length although it was asked for
            # a dynamic one: this structure is exported again for each length.
            key += (("steps", case.steps),)
            if key not in self._exports:
                with self._sample_length(case.steps):
                    entry = self._load_or_export(handle, case, native, key)
                if not isinstance(entry, str):
                    entry = (entry[0], entry[1], entry[2] + ", static time axis: exported per length", case.steps)
                self._exports[key] = entry
            entry = self._exports[key]
        if isinstance(entry, str):
            raise Unsupported(entry)
        return entry

    @contextlib.contextmanager
    def _sample_length(self, steps: int | None):
        """Export with samples of ``steps`` steps inside this block (None: the default sample)."""
        self.sample_steps = steps
        try:
            yield
        finally:
            self.sample_steps = None

    def _load_or_export(self, handle, case: Case, native: list[np.ndarray], key: tuple):
        """The structure's entry: from the disk cache, or exported with tagged weights; a refusal
        is its message.  Weights that do not fit the tags of their dtype are exported with the
        case's own weights (and then for every example: placement None)."""
        import onnx

        total = sum(int(np.size(w)) for w in native)
        if total > tag_capacity(native[0].dtype):
            try:
                model = self._export(handle, case)
            except Unsupported as exc:
                return str(exc)
            return model, None, describe_graph(model), None
        path = self._cache_file(key)
        refused, saved = path.with_suffix(".refused"), path.with_suffix(".onnx")
        if refused.is_file():
            return refused.read_text()
        if saved.is_file():
            model = onnx.load_from_string(saved.read_bytes())
        else:
            self._assign(handle, make_tags([np.shape(w) for w in native], native[0].dtype))
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                model = self._export(handle, case)
            except Unsupported as exc:
                refused.write_text(str(exc))
                return str(exc)
            finally:
                self._assign(handle, native)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(model.SerializeToString())
            tmp.replace(saved)
        placement = Placement(model, total)
        usable = bool(placement.slots) and not placement.arithmetic
        return model, placement if usable else None, describe_graph(model), None

    def _model_for(self, case: Case, handle):
        """(serialized model with the case's weights, produced)."""
        native = self._weights(handle)
        model, placement, produced, steps = self._exported(case, handle, native)
        if placement is None:
            # Exported with the case's own weights, with the sample length the structure needs.
            with self._sample_length(steps):
                model = self._export(handle, case)
        elif produced in self._unplaceable:
            with self._sample_length(steps):
                model = self._export(handle, case)
            produced = f"{describe_graph(model)} ({self._unplaceable[produced]})"
        else:
            placement.bind(model, native)
            if produced not in self._verified:
                with self._sample_length(steps):
                    real = self._export(handle, case)
                problems = self._placement_problems(real, model)
                if problems:
                    # The converter looked at weight values: this kind of product is exported
                    # with each example's own weights from now on, and this example runs the
                    # real export.
                    why = (f"exported per example: weights placed by tags did not reproduce a real "
                           f"export, {'; '.join(problems[:5])}")
                    self._unplaceable[produced] = why
                    model, produced = real, f"{describe_graph(real)} ({why})"
                else:
                    self._verified.add(produced)
        return model.SerializeToString(), produced

    @staticmethod
    def _placement_problems(real, bound) -> list[str]:
        """How the model with weights placed by tags (``bound``) differs from a real export with
        the case's weights (``real``): the nodes and the constant tensors, bit for bit.  Empty:
        the placement is valid."""
        from onnx import numpy_helper

        problems = []
        # Node and value names are not compared: converters number them with process-wide
        # counters (tf2onnx), so two exports of one model differ in names only.
        if [n.op_type for n in real.graph.node] != [n.op_type for n in bound.graph.node]:
            problems.append("the graphs have different operators")
        # Compared as collections: a converter may order its constants differently (by names
        # that carry counters) from one export to the next.
        def contents(model):
            arrays = (numpy_helper.to_array(t) for _, t in model_tensors(model.graph))
            return sorted((str(a.dtype), a.shape, a.tobytes()) for a in arrays)

        theirs, ours = contents(real), contents(bound)
        if theirs != ours:
            differ = sum(1 for t in theirs if t not in ours)
            problems.append(f"{differ} of {len(theirs)} constant tensors differ")
        return problems

    # ------------------------------------------------------------------ the contract

    def run(self, case: Case) -> Output:
        handle = self._load(case)
        model, produced = self._model_for(case, handle)
        try:
            results = inference_session(model).run(None, self._feeds(case, handle))
        except Exception as exc:  # onnxruntime's own exception types
            raise BrokenContract(f"onnxruntime could not run the converted model ({produced}): "
                                 f"{type(exc).__name__}: {exc}") from None
        out = self._output(case, handle, [np.asarray(r) for r in results])
        out.produced = produced
        return out


def first_line(exc: BaseException, limit: int = 600) -> str:
    """A converter's refusal, shortened for an Unsupported message: the exception type and the
    line that says what went wrong (the "Exception summary" of torch.onnx's exporter; else the
    first line), without graph dumps or terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "## Exception summary" in lines and lines.index("## Exception summary") + 1 < len(lines):
        line = lines[lines.index("## Exception summary") + 1]
    else:
        line = lines[0] if lines else ""
    return f"{type(exc).__name__}: {line.split('  [Caused by')[0]}"[:limit]
