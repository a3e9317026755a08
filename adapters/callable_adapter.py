"""The native-function contract: a user's own LSTM as a plain Python callable, and the adapter
that holds it to the suite's properties (``python -m conformance check``).

A user exposes their LSTM as a callable::

    def my_lstm(x, h0, c0, kernel, recurrent_kernel, bias):
        # x (B, T, D) batch-major; h0, c0 (B, H); NumPy arrays in
        # kernel, recurrent_kernel, bias: the four gates packed the way *their* framework packs them
        return y, h_T, c_T   # NumPy arrays or array-likes: (B, T, H), (B, H), (B, H)

The packing of the weights is a :class:`Convention`: the gate order (a permutation of "ifgo"),
the kernel layout ("D,4H" as Keras, TF and CNTK store it, or "4H,D" as PyTorch and ONNX do), the
recurrent layout ("H,4H" or "4H,H"), a run-time forget bias added to the forget pre-activation on
top of the bias (TF1 LSTMCell adds 1.0), the recurrent activation of the i, f, o gates, the
activation of the candidate and the cell output, and how the 4H axes hold the gates: "gate-major"
(four blocks of H, as nearly every framework) or "unit-major" (H groups of four, as Chainer's
``F.lstm``; ``reference.layout``).  Its packing is an entry like every
framework's (``adapters.packings.callable_packing``).

:func:`call_native` calls the callable with copies of the inputs and validates what it returns.
Anything the contract does not allow (an exception, a wrong number of results, a wrong shape, a
non-numeric result) raises :class:`NativeError` (a ``BrokenContract``: a failed example with its
counterexample) with a message that says what was expected and what came back.  NaN where the
reference has none is a failure of the comparison.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reference import LSTMParams, LSTMSpec, lstm_forward
from reference.activations import ACTIVATIONS, RECURRENT_ACTIVATIONS
from reference.gates import resolve_gate_order
from reference.layout import orient, permute_params, resolve_packing

from .base import Adapter, BrokenContract, Capabilities, Case, Output
from .packings import Packing, callable_packing

KERNEL_LAYOUTS = ("D,4H", "4H,D")
RECURRENT_LAYOUTS = ("H,4H", "4H,H")
#: The dtypes a callable can be checked in (arrays are passed in it; its tolerance row applies).
DTYPES = ("float32", "float64", "float16")
#: Layout spellings accepted on the command line, by canonical name.
_LAYOUT_ALIASES = {
    "D,4H": "D,4H", "D4H": "D,4H", "(D,4H)": "D,4H", "ROWS": "D,4H",
    "4H,D": "4H,D", "4HD": "4H,D", "(4H,D)": "4H,D", "COLUMNS": "4H,D",
    "H,4H": "H,4H", "H4H": "H,4H", "(H,4H)": "H,4H",
    "4H,H": "4H,H", "4HH": "4H,H", "(4H,H)": "4H,H",
}


class NativeError(BrokenContract):
    """The callable broke the native-function contract (raised, wrong results); the message says how."""


class CallableHung(BaseException):
    """The callable did not return within its timeout.  A BaseException on purpose: Hypothesis
    neither shrinks nor replays it (each further call could hang as long), so the run stops at
    once with this case; the caller reports it as a failed example.  The hung call goes on in a
    daemon thread, abandoned."""

    def __init__(self, seconds: float, case=None):
        super().__init__(f"the callable did not return within {seconds:.3g} s")
        self.seconds = seconds
        self.case = case


#: Seconds a call may take before it counts as hung: this, plus the time of the work at a
#: pessimistic 1e8 multiply-adds per second (a NumPy loop over small matrices).
DEFAULT_TIMEOUT = 5.0


def call_timeout(base: float, batch: int, steps: int, input_size: int, hidden_size: int) -> float:
    """The timeout of one call: ``base`` seconds plus the time of its multiply-adds at 1e8 per s."""
    return base + batch * steps * 4 * hidden_size * (input_size + hidden_size) / 1e8


def normalize_layout(value: str, *, argument: str, allowed: tuple[str, ...]) -> str:
    """Canonical layout name ("D,4H", ...) from a spelling like "d,4h" or "(4H, D)"."""
    key = str(value).replace(" ", "").upper()
    canonical = _LAYOUT_ALIASES.get(key)
    if canonical not in allowed:
        raise ValueError(f"{argument}: expected one of {list(allowed)}, got {value!r}")
    return canonical


def format_number(value: float) -> str:
    """Shortest round-tripping text of a float (1.0 -> "1", 0.5 -> "0.5")."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Convention:
    """How a native callable packs its weights and what it computes besides."""

    gate_order: str = "ifgo"
    kernel_layout: str = "D,4H"
    recurrent_layout: str = "H,4H"
    forget_bias: float = 0.0
    recurrent_activation: str = "sigmoid"
    activation: str = "tanh"
    packing: str = "gate-major"  # or "unit-major" (reference.layout.GATE_PACKINGS)

    def __post_init__(self):
        object.__setattr__(self, "gate_order", resolve_gate_order(self.gate_order, argument="gate_order"))
        object.__setattr__(self, "packing", resolve_packing(self.packing))
        object.__setattr__(self, "kernel_layout", normalize_layout(
            self.kernel_layout, argument="kernel_layout", allowed=KERNEL_LAYOUTS))
        object.__setattr__(self, "recurrent_layout", normalize_layout(
            self.recurrent_layout, argument="recurrent_layout", allowed=RECURRENT_LAYOUTS))
        if self.recurrent_activation not in RECURRENT_ACTIVATIONS:
            raise ValueError(f"recurrent_activation: expected one of {sorted(RECURRENT_ACTIVATIONS)}, "
                             f"got {self.recurrent_activation!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        # LSTMSpec validates the forget bias (a finite number) and stores it as a float.
        object.__setattr__(self, "forget_bias", self.spec().forget_bias)

    def spec(self) -> LSTMSpec:
        """The reference spec this convention computes (weights packed in ``gate_order``)."""
        return LSTMSpec(gate_order=self.gate_order, forget_bias=self.forget_bias,
                        recurrent_activation=self.recurrent_activation, activation=self.activation)

    def native_packing(self) -> Packing:
        return callable_packing(self.gate_order, self.kernel_layout, self.recurrent_layout,
                                forget_bias=self.forget_bias, packing=self.packing)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        packed = "" if self.packing == "gate-major" else f" {self.packing}"
        text = (f"gate order {self.gate_order}{packed}, kernel ({self.kernel_layout}), recurrent "
                f"({self.recurrent_layout}), forget bias {self.forget_bias:.6g}, "
                f"recurrent activation {self.recurrent_activation}")
        return text + (f", activation {self.activation}" if self.activation != "tanh" else "")

    def cli_options(self) -> str:
        """The ``check`` options that claim this convention."""
        text = (f"--gate-order {self.gate_order} --kernel-layout {self.kernel_layout} "
                f"--recurrent-layout {self.recurrent_layout} --forget-bias "
                f"{format_number(self.forget_bias)} --recurrent-activation {self.recurrent_activation}")
        text += f" --activation {self.activation}" if self.activation != "tanh" else ""
        return text + (f" --packing {self.packing}" if self.packing != "gate-major" else "")


def pack(params: LSTMParams, spec_order: str, convention: Convention, *, spec_forget_bias: float = 0.0,
         dtype="float64") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The native (kernel, recurrent_kernel, bias) of ``convention`` for reference ``params``
    packed in ``spec_order`` and meant to compute with run-time forget bias ``spec_forget_bias``:
    a second bias is summed into the one bias, a missing bias becomes zeros, and the difference
    between the wanted and the convention's run-time forget bias is folded into the bias."""
    native = convention.native_packing().to_native(params, spec_order,
                                            forget_bias=float(spec_forget_bias) - convention.forget_bias)
    return tuple(np.ascontiguousarray(native[k], dtype=dtype) for k in ("kernel", "recurrent_kernel", "bias"))


def _describe_exception(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return f"{type(exc).__name__}: {exc}{where}"


def _as_array(value, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # e.g. a torch tensor that requires grad
        hint = " (detach it / move it to the CPU first)" if hasattr(value, "detach") else ""
        raise NativeError(f"the callable's {name} (a {type(value).__name__}) could not be converted to a "
                          f"NumPy array{hint}: {type(exc).__name__}: {exc}") from None
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise NativeError(f"the callable's {name}: expected a float array of shape {shape}, got dtype "
                          f"{array.dtype} (type {type(value).__name__})")
    if array.shape != shape:
        raise NativeError(f"the callable's {name}: expected shape {shape}, got {array.shape}")
    return array.astype(np.float64)


def call_native(fn: Callable, x, h0, c0, kernel, recurrent_kernel, bias, *, dtype="float32",
                timeout: float | None = None):
    """Call ``fn`` on copies of the inputs cast to ``dtype``; return float64 ``(y, h_T, c_T)``.

    Raises NativeError when the call raises, returns anything but three array-likes, or returns
    arrays of the wrong shape: y (B, T, H), h_T and c_T (B, H) with H = kernel's 4H / 4; and
    CallableHung when it does not return within ``timeout`` seconds (None: no limit).
    """
    x = np.asarray(x)
    batch, steps = x.shape[0], x.shape[1]
    four_h = bias.shape[-1]
    hidden = four_h // 4
    args = [np.array(a, dtype=dtype, copy=True) for a in (x, h0, c0, kernel, recurrent_kernel, bias)]
    try:
        result = fn(*args) if timeout is None else _with_timeout(fn, args, timeout)
    except CallableHung:
        raise
    except Exception as exc:
        raise NativeError("the callable raised " + _describe_exception(exc)) from exc
    if isinstance(result, (str, bytes)) or not hasattr(result, "__len__") or hasattr(result, "shape"):
        raise NativeError(f"the callable returned a {type(result).__name__}; the contract is a tuple "
                          f"(y, h_T, c_T) of shapes ({batch}, {steps}, {hidden}), ({batch}, {hidden}), "
                          f"({batch}, {hidden})")
    if len(result) != 3:
        hint = ""
        if len(result) == 2:
            hint = " (if it returns (y, (h_T, c_T)), wrap it to return y, h_T, c_T)"
        raise NativeError(f"the callable returned {len(result)} values; the contract is three: "
                          f"y, h_T, c_T{hint}")
    y = _as_array(result[0], "y", (batch, steps, hidden))
    h = _as_array(result[1], "h_T", (batch, hidden))
    c = _as_array(result[2], "c_T", (batch, hidden))
    return y, h, c


def _with_timeout(fn: Callable, args: list, seconds: float):
    """``fn(*args)`` in a daemon thread; CallableHung when it has not returned after ``seconds``."""
    import threading

    outcome: dict = {}

    def call():
        try:
            outcome["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, name="lstm-conformance callable", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CallableHung(seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def reference_callable(convention: Convention, *, output_dtype=None) -> Callable:
    """A native callable that implements ``convention`` with the reference (for tests, demos and
    as the model answer of the contract).  ``output_dtype`` rounds its results (e.g. "float32")."""
    spec = convention.spec()

    def lstm(x, h0, c0, kernel, recurrent_kernel, bias):
        params = LSTMParams(kernel=orient(kernel, convention.kernel_layout, rows="D"),
                            recurrent_kernel=orient(recurrent_kernel, convention.recurrent_layout, rows="H"),
                            bias=np.asarray(bias))
        params = permute_params(params, convention.gate_order, convention.gate_order, from_packing=convention.packing)
        y, (h, c) = lstm_forward(x, params, spec, (h0, c0))
        if output_dtype is not None:
            y, h, c = (a.astype(output_dtype) for a in (y, h, c))
        return y, h, c

    lstm.__name__ = f"reference_{convention.gate_order}"
    lstm.__doc__ = f"The reference LSTM as a native callable: {convention.describe()}."
    return lstm


class CallableAdapter(Adapter):
    """A user's LSTM callable in a claimed :class:`Convention`, as an adapter: the properties a
    bare callable can express run on it (one forward layer with a given or zero state, any
    forget bias and second bias, which the adapter folds into the one bias), in one dtype.

    ``rerun``: the command a failure report ends with (``check`` sets it to itself, with the
    seed); ``{property}`` in it is replaced by the property's name.  ``timeout``: a call that has
    not returned after ``call_timeout(timeout, ...)`` seconds raises CallableHung.
    """

    framework = "user code"
    bias_convention = "one bias; a second bias and the difference of forget biases folded into it"

    def __init__(self, fn: Callable, convention: Convention, *, dtype: str = "float32",
                 name: str = "callable", rerun: str | None = None, timeout: float | None = DEFAULT_TIMEOUT):
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
        self.fn = fn
        self.timeout = timeout  # the base of each call's timeout (call_timeout); None: no limit
        self.convention = convention
        self.dtype = dtype
        self.name = name
        self.rerun = rerun
        self.api = f"{name} (the native-function contract: {convention.describe()})"
        self.native_gate_order = convention.gate_order
        self.weight_orientation = (f"kernel ({convention.kernel_layout}), recurrent_kernel "
                                   f"({convention.recurrent_layout}), bias (4H,)")
        self._packing = convention.native_packing()
        self.capabilities = Capabilities(
            dtypes=(dtype,), recurrent_activations=(convention.recurrent_activation,),
            activations=(convention.activation,),
            features=frozenset({"initial_state", "forget_bias", "recurrent_bias"}),
            why_not={f: "a bare callable has one layer, one direction and no lengths"
                     for f in ("lengths", "reverse", "bidirectional", "layers")})

    def version(self) -> str:
        return "-"

    def identity(self) -> str:
        return f"a callable under the claimed convention: {self.convention.describe()}"

    def _native(self, case: Case) -> dict[str, np.ndarray]:
        fold = case.spec.forget_bias - self.convention.forget_bias
        return self._packing.to_native(case.params, case.spec.gate_order, forget_bias=fold)

    def _state(self, case: Case):
        if case.initial_state is not None:
            return case.initial_state[0]
        zeros = np.zeros((case.batch, case.params.hidden_size))
        return zeros, zeros.copy()

    def run(self, case: Case) -> Output:
        native = self._native(case)
        h0, c0 = self._state(case)
        p = case.params
        timeout = None if self.timeout is None else call_timeout(self.timeout, case.batch, case.steps,
                                                                  p.input_size, p.hidden_size)
        try:
            y, h, c = call_native(self.fn, case.x, h0, c0, native["kernel"], native["recurrent_kernel"],
                                  native["bias"], dtype=self.dtype, timeout=timeout)
        except CallableHung as exc:
            exc.case = case
            raise
        return Output(y, [(h, c)])

    def report_inputs(self, case: Case):
        h0, c0 = self._state(case)
        return "native packing, as passed to the callable", {"x": case.x, "h0": h0, "c0": c0, **self._native(case)}

    def rerun_command(self, property_name: str) -> str:
        if self.rerun:
            return self.rerun.replace("{property}", property_name)
        return super().rerun_command(property_name)
