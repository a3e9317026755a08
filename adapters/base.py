"""The adapter contract: what every backend declares as data and the calls the suite makes.

An adapter loads *identical* weights into one framework API and runs a :class:`Case`.  It knows
only its own packing: it declares its native gate order by preset name (``reference.gates``) and
converts the reference parameters with ``reference.layout``; it never slices gate blocks itself.

Arrays cross this boundary as NumPy.  The case's arrays are float64 values that are exactly
representable in ``case.dtype`` (the suite rounds them first), so the adapter casts without loss
and any difference from the reference is the framework's arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference import LSTMParams, LSTMSpec

DTYPES = ("float32", "float64", "float16", "bfloat16")
DIRECTIONS = ("forward", "reverse", "bidirectional")

#: Everything beyond a plain forward pass that a property may need, by name.  An adapter lists
#: the ones its framework can express in ``Capabilities.features``.
FEATURES = {
    "initial_state": "a given (h0, c0) instead of zeros",
    "forget_bias": "a run-time forget bias (native, or folded into the bias by the adapter)",
    "recurrent_bias": "a second bias (natively two, or summed into one by the adapter)",
    "peepholes": "peephole connections (i, f see c_{t-1}; o sees c_t)",
    "cell_clip": "clip of the cell state (TF cell_clip)",
    "gate_clip": "clip of the gate pre-activations (ONNX clip as ONNX Runtime computes it)",
    "activation_clip": "ONNX clip as the ONNX spec words it: every activation's input, h(clip(c)) too",
    "cifg": "coupled input and forget gates, i = 1 - f (TFLite / NNAPI CIFG: no input-gate weights)",
    "input_forget": "coupled input and forget gates, f = 1 - i (ONNX input_forget as ONNX Runtime computes it)",
    "layer_norm": "layer-normalised gate pre-activations (TFLite / NNAPI layer-norm LSTM)",
    "projection_bias": "a bias added after the output projection (TFLite / NNAPI)",
    "cell_activation": "an activation of the cell state before the output gate other than g's (ONNX h)",
    "backward_activations": "the backward direction's own activations (ONNX bidirectional, six activations)",
    "projection": "output projection (num_proj / proj_size)",
    "proj_clip": "clip of the projected output",
    "lengths": "per-sequence lengths, with Capabilities.length_semantics",
    "empty_sequences": "a sequence of length 0 in a batch with lengths",
    "reverse": "the reverse direction, outputs in Capabilities.reverse_time_order",
    "bidirectional": "a bidirectional layer (outputs concatenated fw | bw, aligned)",
    "layers": "stacked layers (up to Capabilities.max_layers)",
    "step": "a native single-step API driven with the state fed back (LSTMCell)",
    "stateful": "native state carried across calls and reset (Keras stateful, TF1 variables)",
    "gradients": "gradients of a scalar loss with respect to inputs, state and weights",
}


def installed_versions(distributions, *, missing: str | None = None) -> dict[str, str]:
    """The installed version of each of ``distributions`` (pip names), for result files and cache
    keys; one that is not installed is left out, or given as ``missing`` when that is set."""
    from importlib import metadata

    out = {}
    for name in distributions:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if missing is not None:
                out[name] = missing
    return out


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can express.  A property needing anything missing is *unsupported*, and
    the harness never calls an adapter with a case it cannot express
    (``conformance.harness.requirements``): an adapter does not check these again.

    The first dtype, recurrent activation and activation listed are the ones the properties
    draw unless they say otherwise (float32, sigmoid and tanh for every framework adapter).
    Activations are canonical names of ``reference.activations``; "family(*)" declares every
    parameter value of a parameterised one (ONNX's "leaky_relu(*)", ...).
    ``why_not`` says why the framework lacks something (by feature, dtype or activation name),
    for the unsupported messages.
    """

    dtypes: tuple[str, ...] = ("float32",)
    recurrent_activations: tuple[str, ...] = ("sigmoid",)
    activations: tuple[str, ...] = ("tanh",)
    features: frozenset[str] = frozenset()
    length_semantics: str | None = None  # "zeros" or "repeat" when "lengths" is a feature
    # When a bidirectional layer masks differently from a plain one (Keras' Bidirectional forces
    # zero outputs at masked steps while a plain Keras LSTM repeats the previous output).
    bidirectional_length_semantics: str | None = None
    reverse_time_order: str = "aligned"  # "aligned" or "processed" (see reference.lstm_forward)
    max_layers: int = 1
    gradient_dtypes: tuple[str, ...] = ("float32", "float64")
    # The epsilon a backend's layer normalisation adds to the variance when it is a constant of its
    # kernel (LiteRT: 1e-8): layer-norm cases are drawn with it as LSTMSpec.layer_norm_epsilon, and
    # a case with another epsilon is one the backend cannot express.  None: it takes the spec's.
    layer_norm_epsilon: float | None = None
    why_not: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"features: expected names from {sorted(FEATURES)}, got unknown {sorted(unknown)}")
        unknown = set(self.dtypes) - set(DTYPES)
        if unknown:
            raise ValueError(f"dtypes: expected names from {DTYPES}, got unknown {sorted(unknown)}")
        object.__setattr__(self, "features", frozenset(self.features))
        for name in ("length_semantics", "bidirectional_length_semantics"):
            if getattr(self, name) not in (None, "zeros", "repeat"):
                raise ValueError(f"{name}: expected None, 'zeros' or 'repeat', got {getattr(self, name)!r}")
        eps = self.layer_norm_epsilon
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 1):
            raise ValueError(f"layer_norm_epsilon: expected None or a number in [0, 1), got {eps!r}")

    def length_semantics_for(self, direction: str) -> str | None:
        """The length semantics of a run in ``direction``; None without the "lengths" feature."""
        if "lengths" not in self.features:
            return None
        if direction == "bidirectional" and self.bidirectional_length_semantics:
            return self.bidirectional_length_semantics
        return self.length_semantics


@dataclass
class Case:
    """One conformance example.

    layers         [layer][direction] LSTMParams in the reference packing (spec.gate_order);
                   one direction unless ``direction == "bidirectional"``
    x              (B, T, D) batch-major
    initial_state  None (zeros) or one (h0, c0) per layer and direction, in PyTorch's h_n order
                   (index = layer * num_directions + direction)
    lengths        None or (B,) ints in [0, T]
    dtype          the dtype the framework computes in; arrays hold values exact in it
    """

    spec: LSTMSpec
    layers: list[list[LSTMParams]]
    x: np.ndarray
    initial_state: list[tuple[np.ndarray, np.ndarray]] | None = None
    lengths: np.ndarray | None = None
    direction: str = "forward"
    dtype: str = "float32"
    origin: dict = field(default_factory=dict)  # how it was drawn (seed, regime): to reproduce it

    def __repr__(self) -> str:
        spec = {k: v for k, v in self.spec.to_dict().items() if v != getattr(LSTMSpec, k, None)}
        spec["gate_order"] = self.spec.gate_order
        extra = "" if self.lengths is None else f", lengths={self.lengths.tolist()}"
        state = "given" if self.initial_state is not None else "zeros"
        return (f"Case({self.shapes()}, dtype={self.dtype!r}, spec={spec}, initial_state={state}"
                f"{extra}, origin={self.origin})")

    def _repr_pretty_(self, printer, cycle) -> None:
        # Hypothesis prints a falsifying example with its pretty printer, which would list a
        # dataclass field by field (every array); the short form names the seed instead.
        printer.text(repr(self))

    @property
    def params(self) -> LSTMParams:
        """The parameters of a single-layer, single-direction case."""
        return self.layers[0][0]

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    @property
    def steps(self) -> int:
        return self.x.shape[1]

    def shapes(self) -> dict:
        p = self.params
        return {"batch": self.batch, "steps": self.steps, "input_size": p.input_size,
                "hidden_size": p.hidden_size, "output_size": p.output_size,
                "layers": len(self.layers), "direction": self.direction}

    def replace(self, **changes) -> "Case":
        values = dict(self.__dict__)
        values.update(changes)
        return Case(**values)


@dataclass
class Output:
    """What a framework computed.

    y         (B, T, out) batch-major; for a reverse run in ``Capabilities.reverse_time_order``
    final     one (h_T, c_T) per layer and direction, in the order of ``Case.initial_state``
    produced  what actually ran, when it depends on the case: a pipeline backend says what its
              converter produced (e.g. "ONNX LSTM op", "Loop with 31 ops", "unrolled: 412 ops"),
              which decides which runtime kernel was tested; counted per property in the results
    """

    y: np.ndarray
    final: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    produced: str | None = None


class Unsupported(Exception):
    """Raised by an adapter for a case its framework cannot express (reported, never a pass)."""


class BrokenContract(AssertionError):
    """What the framework (or a user's callable) gave back breaks the adapter contract: it raised,
    or returned the wrong number, shapes or types of results.  A failure of the example, reported
    with its counterexample like any other."""


class Adapter:
    """Base class of the adapters.  Subclasses set the class attributes and implement ``run``.

    The default ``run_steps`` and ``run_stream`` drive ``run`` with explicit state, which is
    what a user without a native step or stateful API does; adapters with one override them.
    """

    name: str = "?"
    framework: str = "?"  # importable distribution name, for the version
    api: str = "?"  # the API exercised, e.g. "torch.nn.LSTM"
    native_gate_order: str = "ifgo"  # preset name or order, see reference.gates
    bias_convention: str = "one bias"  # e.g. "two biases b_ih + b_hh"
    weight_orientation: str = "kernel (D, 4H), recurrent (H, 4H)"
    capabilities: Capabilities = Capabilities()

    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version(self.framework)
        except metadata.PackageNotFoundError:
            return "unknown"

    def describe(self) -> dict:
        caps = self.capabilities
        return {
            "name": self.name, "framework": self.framework, "version": self.version(),
            "api": self.api, "native_gate_order": self.native_gate_order,
            "bias_convention": self.bias_convention, "weight_orientation": self.weight_orientation,
            "dtypes": list(caps.dtypes), "features": sorted(caps.features),
            "recurrent_activations": list(caps.recurrent_activations),
            "activations": list(caps.activations), "length_semantics": caps.length_semantics,
            "bidirectional_length_semantics": caps.length_semantics_for("bidirectional"),
            "reverse_time_order": caps.reverse_time_order, "max_layers": caps.max_layers,
            **({"layer_norm_epsilon": caps.layer_norm_epsilon} if caps.layer_norm_epsilon is not None else {}),
        }

    def run(self, case: Case) -> Output:
        """Run the whole sequence; return all outputs and the final state(s)."""
        raise NotImplementedError

    def run_steps(self, case: Case) -> Output:
        """Run one step at a time, feeding each returned state into the next call (greedy
        decoding).  Default: ``run`` on length-1 slices with an explicit initial state (what ran
        is the steps' ``produced``)."""
        outputs, state, produced = [], case.initial_state, None
        for t in range(case.steps):
            out = self.run(case.replace(x=case.x[:, t:t + 1], initial_state=state))
            outputs.append(out.y)
            state, produced = out.final, out.produced
        return Output(np.concatenate(outputs, axis=1), state, produced=produced)

    def run_stream(self, case: Case, chunks: list[int]) -> tuple[list[Output], Output]:
        """Feed ``case.x`` in consecutive chunks of the given lengths with the state carried
        between calls; then reset the state and run the first chunk again.

        Returns (one Output per chunk, the Output of the first chunk after the reset).  The reset
        run starts from zeros.  Default: explicit state passed between ``run`` calls.
        """
        outputs, state, start = [], case.initial_state, 0
        for n in chunks:
            out = self.run(case.replace(x=case.x[:, start:start + n], initial_state=state))
            outputs.append(out)
            state, start = out.final, start + n
        after_reset = self.run(case.replace(x=case.x[:, :chunks[0]], initial_state=None))
        return outputs, after_reset

    def gradients(self, case: Case, dy: np.ndarray, dh: np.ndarray, dc: np.ndarray) -> dict:
        """Gradients of L = sum(y*dy) + sum(h_T*dh) + sum(c_T*dc) for a single-layer,
        single-direction case, keyed like ``reference.lstm_backward`` ("x", "h0", "c0", "kernel",
        "recurrent_kernel", and "bias", "recurrent_bias", "peephole", "projection" for the
        params that are set), converted back to the reference packing."""
        raise Unsupported(f"{self.name}: gradients are not implemented")

    def size_plan(self, plan):
        """The SizePlan (conformance.harness.strategies) to draw this backend's cases with, given
        the run's ``plan``.  Default: the run's.  A backend whose cost grows with every new shape
        (a converter that exports one model per structure, at seconds each) may narrow it (fewer
        examples at scale, fewer distinct sizes) and must say so in its docs; the results record
        the sizes reached either way ("largest")."""
        return plan

    def setup_problem(self) -> str | None:
        """None when the backend can run here; otherwise why not (a prerequisite of the machine is
        missing: an old CPython, a system library), with the command that fixes it.  The suite
        then reports the backend "not set up" instead of failing every test."""
        return None

    def identity(self) -> str:
        """What was tested, for a failure report: framework, version and API."""
        return f"{self.framework} {self.version()}, {self.api}"

    def report_inputs(self, case: Case) -> tuple[str, dict[str, np.ndarray]]:
        """The inputs of ``case`` as a failure report shows them: (what they are, arrays by
        name).  Default: the reference packing; an adapter whose packing the user knows better
        (a user's callable) shows its own."""
        arrays = {"x": case.x}
        for k, (h, c) in enumerate(case.initial_state or []):
            arrays[f"h0[{k}]"], arrays[f"c0[{k}]"] = h, c
        single = len(case.layers) == 1 and case.num_directions == 1
        for k, dirs in enumerate(case.layers):
            for d, params in enumerate(dirs):
                for name, value in params.arrays().items():
                    arrays[name if single else f"layer{k}.dir{d}.{name}"] = value
        return f"reference packing, gate order {case.spec.gate_order}", arrays

    def rerun_command(self, property_name: str) -> str:
        """How to rerun a failing property (a failure report ends with it)."""
        return (f"pytest conformance/suite --backend {self.name} -k {property_name} (the falsifying "
                f"example and its seed are printed below by Hypothesis)")

    def close(self) -> None:
        """Release processes or sessions (out-of-process workers)."""
