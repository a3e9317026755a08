"""The LiteRT runner for every pipeline that ends in a ``.tflite`` flatbuffer (the TFLite
converter pipelines of ``adapters/tflite_adapter.py``, ONNX -> onnx2tf of
``adapters/onnx2tf_adapter.py``, the fused ops written by ``adapters/litert_native_adapter.py``).

What it does, and nothing framework-specific:

* **runs** a flatbuffer in ``ai_edge_litert.interpreter.Interpreter`` with its default op resolver
  (the builtin kernels, with the XNNPACK delegate applied where it takes ops: what a deployment
  gets), one thread, through the model's signature (named inputs and outputs; a dynamic dimension
  is resized to the fed shape by ``SignatureRunner.__call__``), or by input tensor name for a
  model without one (``run_by_name``);
* **says what the converter produced** (:func:`produced`), from the flatbuffer itself (the
  ``schema_py_generated`` that ai-edge-litert ships): the fused LSTM ops, or a ``WHILE`` loop and
  the ops of its body, or the number of unrolled ops;
* **reads the state a fused LSTM op keeps**: ``UNIDIRECTIONAL_SEQUENCE_LSTM`` (and
  ``BIDIRECTIONAL_SEQUENCE_LSTM``) take their state as *variable* tensors (operands 18 and 19:
  output state h and cell state c; tensorflow/lite/kernels/unidirectional_sequence_lstm.cc,
  ``kOutputStateTensor`` / ``kCellStateTensor``) and write the final state back into them
  (lstm_eval.cc): after ``invoke`` they hold (h_T, c_T), and a second ``invoke`` starts from
  there unless ``reset_all_variables()`` is called (:meth:`LiteRTModel.fused_states`);
* **swaps weights into a converted template** (:class:`WeightTemplate`): a model converted once
  per shape signature with *probe* weights (distinct float32 bit patterns) tells where the
  converter put every source weight element; new weights are written at those byte offsets, so
  the patched flatbuffer is, byte for byte, what the converter writes for those weights
  (verified with a second probe: the same offsets, every other byte unchanged; a converter that
  computes anything from the weight values is refused, and then every case is converted).
"""

from __future__ import annotations

import collections

import numpy as np

#: Operator names of the fused LSTM kernels.
FUSED_LSTM_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM")
#: Operands of UNIDIRECTIONAL_SEQUENCE_LSTM holding the state (output state h, cell state c):
#: tensorflow/lite/kernels/lstm_shared.h, kOutputStateTensor = 18, kCellStateTensor = 19.
STATE_OPERANDS = (18, 19)


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def operator_names(model: bytes) -> list[list[str]]:
    """The builtin operator name of every operator, per subgraph, as the flatbuffer stores them."""
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    m = schema.Model.GetRootAs(model, 0)
    codes = []
    for k in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(k)
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        codes.append(names.get(value, f"builtin {value}") if value != schema.BuiltinOperator.CUSTOM
                     else f"CUSTOM {code.CustomCode().decode()}")
    out = []
    for s in range(m.SubgraphsLength()):
        sub = m.Subgraphs(s)
        out.append([codes[sub.Operators(k).OpcodeIndex()] for k in range(sub.OperatorsLength())])
    return out


def int8_tensors(model: bytes) -> int:
    """How many INT8 tensors the model holds (quantized weights: dynamic-range quantization
    leaves tensors under its minimum size, 1024 elements, in float32)."""
    schema = _schema()
    m = schema.Model.GetRootAs(model, 0)
    return sum(m.Subgraphs(s).Tensors(k).Type() == schema.TensorType.INT8
               for s in range(m.SubgraphsLength()) for k in range(m.Subgraphs(s).TensorsLength()))


def produced(model: bytes) -> str:
    """What a converter produced, for ``Output.produced``: "UNIDIRECTIONAL_SEQUENCE_LSTM x2 (+ 3
    other ops)", "WHILE loop (body: 14 ops: ...)", or "unrolled: N ops (...)"; ", int8 weights: N"
    when it holds quantized tensors."""
    quantized = int8_tensors(model)
    return _ops_produced(model) + (f", int8 tensors: {quantized}" if quantized else "")


def _ops_produced(model: bytes) -> str:
    subgraphs = operator_names(model)
    main = subgraphs[0]
    counts = collections.Counter(op for ops in subgraphs for op in ops)
    fused = [op for op in FUSED_LSTM_OPS if counts[op]]
    if fused:
        rest = sum(counts.values()) - sum(counts[op] for op in fused)
        text = ", ".join(f"{op} x{counts[op]}" if counts[op] > 1 else op for op in fused)
        return text + (f" (+ {rest} other ops)" if rest else "")
    if "WHILE" in counts:
        body = sum(len(ops) for ops in subgraphs[1:])
        kinds = ", ".join(sorted({op for ops in subgraphs[1:] for op in ops}))
        return f"WHILE loop x{counts['WHILE']} (cond and body: {body} ops: {kinds})"
    return f"unrolled: {len(main)} ops ({', '.join(sorted(set(main)))})"


class LiteRTModel:
    """One flatbuffer in one interpreter (LiteRT's default op resolver, one thread)."""

    def __init__(self, model: bytes, *, num_threads: int = 1, signature: bool = True):
        from ai_edge_litert.interpreter import Interpreter

        self.model = bytes(model)
        self.interpreter = Interpreter(model_content=self.model, num_threads=num_threads)
        # A model written without a SignatureDef (litert_native_adapter) is driven by tensor index.
        self.runner = self.interpreter.get_signature_runner() if signature else None
        self._produced = None

    @property
    def produced(self) -> str:
        if self._produced is None:
            self._produced = produced(self.model)
        return self._produced

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run the signature on named inputs (float arrays are fed in the input's dtype; a
        dynamic dimension is resized to the fed shape)."""
        details = self.runner.get_input_details()
        feeds = {name: np.ascontiguousarray(value, dtype=details[name]["dtype"])
                 for name, value in inputs.items()}
        return {k: np.array(v) for k, v in self.runner(**feeds).items()}

    def run_by_name(self, inputs: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
        """Run a model that has no SignatureDef (onnx2tf's float32 flatbuffer) through its input
        tensors by name: each is fed the array of its name, a dynamic dimension (-1 in its shape
        signature) resized to the fed shape.  Returns the outputs in the subgraph's order and the
        names in ``inputs`` that the model has no input for (a converter drops inputs it does not
        use, which the caller reports)."""
        itp = self.interpreter
        details = itp.get_input_details()
        missing = [d["name"] for d in details if d["name"] not in inputs]
        if missing:
            raise ValueError(f"inputs: expected arrays for the model's inputs {[d['name'] for d in details]}, "
                             f"got none for {missing}")
        for d in details:
            itp.resize_tensor_input(d["index"], np.shape(inputs[d["name"]]), strict=True)
        itp.allocate_tensors()
        for d in details:
            itp.set_tensor(d["index"], np.ascontiguousarray(inputs[d["name"]], dtype=d["dtype"]))
        itp.invoke()
        outputs = [np.array(itp.get_tensor(d["index"])) for d in itp.get_output_details()]
        return outputs, [name for name in inputs if name not in {d["name"] for d in details}]

    def fused_states(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(h, c) held by each fused LSTM op's state tensors (operands 18 and 19, see the module
        docstring); after ``invoke`` the final state.  Ordered layer by layer, forward before
        backward (PyTorch's h_n order): an op's layer is the number of fused ops upstream of its
        input, and it runs backward when an odd number of REVERSE_V2 ops lie on that path."""
        plan = self._plan()
        ops = [op for op in plan if op["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
        # A delegate's node (XNNPACK takes the CONCATENATION) lists the same outputs as the nodes
        # it replaced, with its inputs in its own order: the graph is read from the model's nodes.
        producers = {int(t): op for op in plan if op["op_name"] != "DELEGATE" for t in op["outputs"]}

        def place(op) -> tuple[int, bool]:
            tensor, backward = int(op["inputs"][0]), False
            while tensor in producers:
                up = producers[tensor]
                if up["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM":
                    return place(up)[0] + 1, backward
                if up["op_name"] == "REVERSE_V2":
                    backward = not backward
                tensor = int(up["inputs"][0])
            return 0, backward

        out = []
        for op in sorted(ops, key=place):
            h, c = (int(op["inputs"][k]) for k in STATE_OPERANDS)
            out.append((np.array(self.interpreter.get_tensor(h)), np.array(self.interpreter.get_tensor(c))))
        return out

    def _plan(self) -> list[dict]:
        """The nodes of the main subgraph as the interpreter holds them: the model's operators,
        then a DELEGATE node for each group of them a delegate (XNNPACK) took over."""
        return [self.interpreter._get_op_details(k) for k in range(len(self.interpreter._get_ops_details()))]


# --------------------------------------------------------------------------------------------
# Weights swapped into a converted template

_PROBE_START = 0x49800000  # float32 2**20 = 1048576.0: patterns from here on are large, finite,
_PROBE_LIMIT = 0x7F000000  # distinct floats that no converter writes as a constant of its own.
#: Patterns of two probe elements are this far apart, so that a value the converter computed
#: from a probe (a fold: + 1, * 2, a sum) is not mistaken for another probe element.
_PROBE_STRIDE = 97


def probe_weights(shapes: list[tuple[int, ...]], *, second: bool = False) -> list[np.ndarray]:
    """Float32 arrays of ``shapes`` whose elements are distinct bit patterns, :data:`_PROBE_STRIDE`
    apart.  The ``second`` probe takes the next range of patterns in another order (a fixed
    permutation): every value differs from the first probe's, so that anything computed from the
    values (a scale, a fold that happens to hit a pattern) differs between the two."""
    return _split(_probe_patterns(_total(shapes), second).view(np.float32), shapes)


def _total(shapes) -> int:
    return sum(int(np.prod(s)) for s in shapes)


def _order(total: int, second: bool) -> np.ndarray:
    """Pattern index of each element: 0, 1, ... for the first probe, a permutation for the second."""
    return np.random.default_rng(20261129).permutation(total) if second else np.arange(total)


def _base(total: int, second: bool) -> int:
    """The first pattern of a probe (the second probe starts after the first one's range)."""
    return _PROBE_START + (total * _PROBE_STRIDE if second else 0)


def _probe_patterns(total: int, second: bool) -> np.ndarray:
    if _PROBE_START + 2 * total * _PROBE_STRIDE >= _PROBE_LIMIT:
        raise ValueError(f"shapes: {total} weight elements are more than the probe patterns")
    return (_base(total, second) + _order(total, second).astype(np.uint64) * _PROBE_STRIDE).astype(np.uint32)


def _split(flat: np.ndarray, shapes) -> list[np.ndarray]:
    out, at = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[at:at + n].reshape(s).copy())
        at += n
    return out


class NotRelocatable(Exception):
    """The converter computes something from the weight values (a fold, a quantization): its
    output cannot be reused with other weights; every case must be converted."""


class WeightTemplate:
    """Where a converter writes each element of the source weights in its flatbuffer.

    ``convert(weights)`` converts a source model holding ``weights`` (float32 arrays of fixed
    shapes) and returns the flatbuffer.  Built from one probe conversion (every element must be
    found stored as it is, each exactly where the probe put it); with ``verify`` a second probe
    proves that the converter's placement does not depend on the values and that no other byte
    does (a caller verifies the first template of each model structure: the placement is the
    converter's code path for that structure).  ``patch(weights)`` then returns the flatbuffer
    the converter writes for ``weights`` without converting again.
    """

    def __init__(self, convert, shapes: list[tuple[int, ...]], *, verify: bool = True):
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        total = _total(self.shapes)
        first = convert(probe_weights(self.shapes))
        self.model = bytes(first)
        positions_1 = self._locate(first, total, second=False)
        self.positions = positions_1
        if not verify:
            return
        second = convert(probe_weights(self.shapes, second=True))
        positions_2 = self._locate(second, total, second=True)
        if (len(first) != len(second) or positions_1.keys() != positions_2.keys()
                or any(not np.array_equal(positions_1[k], positions_2[k]) for k in positions_1)):
            raise NotRelocatable("the converter placed the two probes differently")
        mask = np.ones(len(first) // 4, dtype=bool)
        mask[positions_1["offset"]] = False
        a = np.frombuffer(first[:len(mask) * 4], dtype=np.uint32)
        b = np.frombuffer(second[:len(mask) * 4], dtype=np.uint32)
        if not np.array_equal(a[mask], b[mask]) or first[len(mask) * 4:] != second[len(mask) * 4:]:
            raise NotRelocatable("bytes other than the weights differ between the two probes "
                                 "(the converter computed something from the weight values)")

    @staticmethod
    def _locate(model: bytes, total: int, *, second: bool) -> dict[str, np.ndarray]:
        """Every 4-byte-aligned word of ``model`` that holds a probe pattern: its offset and the
        element it belongs to (an element the converter copied is found more than once)."""
        words = np.frombuffer(model[:len(model) // 4 * 4], dtype=np.uint32).astype(np.int64)
        steps, rest = np.divmod(words - _base(total, second), _PROBE_STRIDE)
        hits = np.nonzero((rest == 0) & (steps >= 0) & (steps < total))[0]
        element_of_pattern = np.argsort(_order(total, second))
        found = element_of_pattern[steps[hits]]
        if len(np.unique(found)) != total:
            missing = total - len(np.unique(found))
            raise NotRelocatable(f"{missing} of {total} weight elements are not stored as they are "
                                 f"(folded, transformed or quantized by the converter)")
        order = np.argsort(found, kind="stable")
        return {"element": found[order], "offset": hits[order]}

    def save(self, path) -> None:
        """Keep the template in an .npz (no pickle: the flatbuffer as bytes, the shapes as JSON),
        written to a temporary name and moved into place."""
        import json

        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, model=np.frombuffer(self.model, np.uint8), shapes=json.dumps(self.shapes),
                 element=self.positions["element"], offset=self.positions["offset"])
        tmp.replace(path)

    @classmethod
    def load(cls, path) -> "WeightTemplate":
        """A template kept by :meth:`save`."""
        import json

        with np.load(path, allow_pickle=False) as data:
            template = cls.__new__(cls)
            template.model = data["model"].tobytes()
            template.shapes = [tuple(int(d) for d in s) for s in json.loads(str(data["shapes"]))]
            template.positions = {"element": data["element"], "offset": data["offset"]}
        return template

    def patch(self, weights: list[np.ndarray]) -> bytes:
        """The converter's flatbuffer for ``weights`` (float32 arrays of the template's shapes)."""
        if [tuple(np.shape(w)) for w in weights] != self.shapes:
            raise ValueError(f"weights: expected shapes {self.shapes}, got {[np.shape(w) for w in weights]}")
        flat = np.concatenate([np.asarray(w, dtype=np.float32).ravel() for w in weights]).view(np.uint32)
        words = np.frombuffer(self.model[:len(self.model) // 4 * 4], dtype=np.uint32).copy()
        words[self.positions["offset"]] = flat[self.positions["element"]]
        return words.tobytes() + self.model[len(words) * 4:]
