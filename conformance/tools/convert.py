"""Convert LSTM weights between the native packings and names of the frameworks: model files and
.npz files of named arrays.

    python -m conformance convert --list MODEL_FILE
    python -m conformance convert --to onnx model.pt model.onnx [--layer NAME] [--verify]
    python -m conformance convert --from torch --to keras IN.npz OUT.npz [--forget-bias F] [--input-size D]

Model files (.safetensors, .pt, .keras, .weights.h5, .h5, .onnx, .msgpack, TF checkpoints) are
read and written by ``conformance.tools.model_files`` (one module per format; ``convert -h``
lists the formats); each LSTM a file holds becomes a :class:`Model` with its name in the file and
the conventions its framework implies.  ``port`` (``convert --verify``) proves a conversion by
running both sides (conformance/tools/port.py).

Every conversion goes through the reference packing (``reference.LSTMParams`` in gate order
"ifgo", one per layer and direction) with ``reference.layout`` doing all the gate permutations,
transposes, splits and bias folds.  .npz files are read with ``np.load(allow_pickle=False)`` and
written with ``np.savez``; float arrays keep their dtype, integer arrays become float32 (said so),
and the dtype written is reported.  Nothing is invented: a tensor the source framework always
stores that the file lacks is an error naming it, unless ``--absent NAME`` says it is absent.

Names per framework (one layer, one direction; see "Layers and directions" below) are the
entries of ``adapters.packings`` (its module docstring lists them), the same table the adapters
load weights with:

torch        ``weight_ih_l0`` (4H, D), ``weight_hh_l0`` (4H, P), ``bias_ih_l0``, ``bias_hh_l0`` (4H,),
             ``weight_hr_l0`` (P, H): ``nn.LSTM().state_dict()`` (a common key prefix such as
             ``lstm.`` is stripped on input); layers ``_l1``, ...; the backward direction
             ``_l0_reverse``.  Gate order ifgo; two biases.
keras        ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,) (absent with
             use_bias=False); gate order ifgo (Keras 2 and 3); no run-time forget bias.
tf1          ``kernel`` (D + P, 4H) on concat([x, h]), ``bias`` (4H,), ``w_i_diag``, ``w_f_diag``,
             ``w_o_diag`` (H,), ``projection/kernel`` (H, P); gate order igfo; the cell adds
             ``forget_bias`` (default 1.0) at run time: ``--forget-bias`` says which value the
             TF1 side uses, and it is folded into / out of the bias of the other side.
cntk         ``W`` (D, 4H), ``H`` (P, 4H), ``b`` (4H,), ``Ci``, ``Cf``, ``Co`` (H,), ``P`` (H, P);
             gate order igfo.
onnx         ``W`` (num_directions, 4H, D), ``R`` (num_directions, 4H, H), ``B`` (num_directions, 8H)
             = [Wb, Rb], ``P`` (num_directions, 3H) peepholes ordered i, o, f; gate order iofg.
             Both directions of a bidirectional layer share the arrays (num_directions = 2).
flax         ``ii/kernel`` ... ``io/kernel`` (D, H), no bias; ``hi/kernel`` ... ``ho/kernel`` (H, H)
             and ``hi/bias`` ... ``ho/bias`` (H,): ``flax.linen.LSTMCell``'s tree flattened with "/".
flax_nnx     the same with ``if_`` for ``if`` (``flax.nnx.LSTMCell``).
mxnet        ``l0_i2h_weight`` (4H, D), ``l0_h2h_weight`` (4H, P), ``l0_i2h_bias``, ``l0_h2h_bias`` (4H,),
             ``l0_h2r_weight`` (P, H): ``gluon.rnn.LSTM``'s parameters (a common prefix such as
             ``lstm0_`` is stripped on input); layers ``l1_``, ...; the backward direction ``r0_``.
             Gate order ifgo; two biases.
chainer      ``upward/W`` (4H, D), ``upward/b`` (4H,), ``lateral/W`` (4H, H): ``chainer.links.LSTM``;
             **unit-major** 4H axis (each unit's four gates side by side) in the order a, i, f, o
             (gifo).
chainer_nstep  ``w0`` ... ``w3`` (H, D) for i, f, a, o and ``w4`` ... ``w7`` (H, H), ``b0`` ... ``b7``
             (H,): one layer and direction of ``chainer.links.NStepLSTM``; two biases.

Layers and directions (all but torch and mxnet, whose names carry them): one layer of one direction uses
the bare names; otherwise every name is prefixed ``layer{k}/`` and, for a bidirectional layer
(not onnx), ``forward/`` or ``backward/``: ``layer0/backward/kernel``.

What a conversion cannot carry is an error, never dropped: peepholes into torch, keras, onnx's
missing projection, flax; a projection into keras, onnx or flax.  What it must combine is
combined and reported: two biases (torch, onnx) into one bias are summed (``fold_biases``); the
TF1 run-time forget bias is added to the forget block (``fold_forget_bias``) when leaving tf1 and
subtracted when entering it.

Exactness: conversions are permutations, transposes, splits and concatenations, so a round trip
A -> B -> A gives back identical arrays whenever B can hold what A has.  The exceptions are
arithmetic: summing two biases (the split is lost: torch -> keras -> torch returns the sum in
bias_ih_l0 and zeros in bias_hh_l0) and folding a forget bias F (b + F - F may differ from b by
half an ulp of b + F).  The *function* is preserved in all cases.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from adapters.packings import PACKINGS
from reference import LSTMParams, LSTMSpec

CANONICAL = "ifgo"
FRAMEWORKS = ("torch", "keras", "tf1", "cntk", "onnx", "flax", "flax_nnx", "mxnet", "chainer", "chainer_nstep")
DIRECTION_NAMES = ("forward", "backward")


@dataclass
class Model:
    """Weights in the reference packing: ``layers[k][direction]`` LSTMParams in gate order "ifgo",
    computed with a run-time forget bias ``forget_bias`` on top of the bias.

    A model file can hold several LSTMs: ``name`` is this one's path in the file ("" when the
    file holds only it), ``framework`` the packing it was read as, and ``conventions`` what the
    source framework implies about how it runs (listed by ``convert --list``).  The options of
    the computation that are not weights (activations, a gate clip, a reverse-only direction)
    travel with it; a target that cannot express one refuses the conversion."""

    layers: list[list[LSTMParams]]
    forget_bias: float = 0.0
    notes: list[str] = field(default_factory=list)
    name: str = ""
    framework: str = ""
    recurrent_activation: str = "sigmoid"
    activation: str = "tanh"
    gate_clip: float | None = None
    reverse: bool = False
    conventions: list[str] = field(default_factory=list)
    #: Why this LSTM cannot be converted at all (ONNX input_forget, Keras merge_mode="sum"), or "".
    refusal: str = ""

    @property
    def bidirectional(self) -> bool:
        return len(self.layers[0]) == 2

    @property
    def direction(self) -> str:
        return "bidirectional" if self.bidirectional else "reverse" if self.reverse else "forward"

    def arrays(self) -> list[np.ndarray]:
        return [np.asarray(v) for dirs in self.layers for p in dirs for v in p.arrays().values()]

    def dtype(self) -> str:
        """The dtype of the arrays, or every dtype when they differ ("mixed float32/float64")."""
        return dtype_name(self.arrays())

    def spec(self) -> LSTMSpec:
        """What the model computes, in the canonical gate order (for the reference)."""
        p = self.layers[0][0]
        return LSTMSpec(gate_order=CANONICAL, forget_bias=self.forget_bias,
                        recurrent_activation=self.recurrent_activation, activation=self.activation,
                        use_peepholes=p.peephole is not None, gate_clip=self.gate_clip,
                        proj_size=None if p.projection is None else p.output_size)

    def describe(self) -> str:
        p = self.layers[0][0]
        parts = [f"{len(self.layers)} layer{'s' if len(self.layers) > 1 else ''}",
                 {"forward": "unidirectional"}.get(self.direction, self.direction),
                 f"input size {p.input_size}", f"hidden size {p.hidden_size}"]
        if p.projection is not None:
            parts.append(f"projection to {p.output_size}")
        if p.peephole is not None:
            parts.append("peepholes")
        if p.recurrent_bias is not None:
            parts.append("two biases")
        elif p.bias is None:
            parts.append("no bias")
        return ", ".join(parts) + f", {self.dtype()}"


def dtype_name(arrays) -> str:
    names = sorted({np.asarray(a).dtype.name for a in arrays})
    return names[0] if len(names) == 1 else "mixed " + "/".join(names)


# ------------------------------------------------------------------------------------------
# Prefixes for layers and directions

def _prefix(layer: int, direction: int, n_layers: int, n_dirs: int, *, directions_in_names=True) -> str:
    if n_layers == 1 and (n_dirs == 1 or not directions_in_names):
        return ""
    text = f"layer{layer}/"
    if n_dirs == 2 and directions_in_names:
        text += f"{DIRECTION_NAMES[direction]}/"
    return text


def _group(weights: dict, framework: str, *, directions_in_names=True) -> list[list[dict]]:
    """Split flat names into [layer][direction] dicts of bare names (see module doc)."""
    pattern = re.compile(r"^layer(\d+)/(?:(forward|backward)/)?(.+)$")
    if not any(pattern.match(k) for k in weights):
        return [[dict(weights)]]
    grouped: dict[int, dict[int, dict]] = {}
    for key, value in weights.items():
        m = pattern.match(key)
        if not m:
            raise ValueError(f"weights: expected every name prefixed layer<k>/ once one is, got {key!r}")
        layer = int(m.group(1))
        if m.group(2) and not directions_in_names:
            raise ValueError(f"weights: {framework} keeps both directions in one array (num_directions "
                             f"axis), expected no forward/ or backward/ in {key!r}")
        direction = DIRECTION_NAMES.index(m.group(2)) if m.group(2) else 0
        grouped.setdefault(layer, {}).setdefault(direction, {})[m.group(3)] = value
    layers = []
    for k in range(len(grouped)):
        if k not in grouped:
            raise ValueError(f"weights: expected layers 0..{len(grouped) - 1}, layer{k}/ is missing")
        dirs = grouped[k]
        if sorted(dirs) not in ([0], [0, 1]):
            raise ValueError(f"weights: layer{k} has directions {sorted(dirs)}, expected forward "
                             f"(and backward)")
        layers.append([dirs[d] for d in sorted(dirs)])
    if len({len(d) for d in layers}) != 1:
        raise ValueError("weights: expected every layer bidirectional or none")
    return layers


# ------------------------------------------------------------------------------------------
# Readers and writers: named arrays <-> Model, through the packing of each framework

@dataclass(frozen=True)
class _LayerNames:
    """How a framework whose names carry the layer and the direction (torch, mxnet) spells them:
    ``pattern`` matches a key as (prefix, native name, layer, direction), ``key`` writes one."""

    pattern: re.Pattern
    groups: tuple[int, int, int, int]  # the pattern's groups: prefix, name, layer, direction
    key: object  # (native name, layer, direction) -> key
    required: tuple[str, str]
    expected: str  # for messages
    #: The biases, all present or none (PyTorch's bias=False); None: always stored
    optional_biases: tuple[str, ...] | None = None
    no_bias_note: str = ""

    def parse(self, key: str):
        m = self.pattern.match(key)
        if not m:
            return None
        prefix, name, layer, direction = (m.group(g) for g in self.groups)
        return prefix, name, int(layer), 1 if direction in ("_reverse", "r") else 0


LAYER_NAMES = {
    # torch.nn.LSTM().state_dict(): weight_ih_l0, ..., weight_ih_l0_reverse
    "torch": _LayerNames(re.compile(r"^(.*?)(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$"),
                         (1, 2, 3, 4), lambda name, k, d: f"{name}_l{k}{'_reverse' if d else ''}",
                         ("weight_ih", "weight_hh"),
                         "weight_ih_l<k>, weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k>, weight_hr_l<k>, optionally "
                         "_reverse", ("bias_ih", "bias_hh"), "no biases (nn.LSTM(bias=False))"),
    # gluon.rnn.LSTM's parameters: l0_i2h_weight, ..., r0_i2h_weight (python/mxnet/gluon/rnn/rnn_layer.py)
    "mxnet": _LayerNames(re.compile(r"^(.*?)(l|r)(\d+)_(i2h_weight|h2h_weight|i2h_bias|h2h_bias|h2r_weight)$"),
                         (1, 4, 3, 2), lambda name, k, d: f"{'lr'[d]}{k}_{name}", ("i2h_weight", "h2h_weight"),
                         "l<k>_ or r<k>_ followed by i2h_weight, h2h_weight, i2h_bias, h2h_bias, h2r_weight"),
}


def _named_reader(framework: str):
    names_of = LAYER_NAMES[framework]

    def read(weights: dict, forget_bias: float, absent=frozenset()) -> Model:
        found: dict[tuple[int, int], dict] = {}
        prefixes = set()
        for key, value in weights.items():
            parsed = names_of.parse(key)
            if parsed is None:
                raise ValueError(f"weights: unexpected name for {framework}: {key!r} (expected "
                                 f"{names_of.expected}, all with one common prefix)")
            prefix, name, layer, direction = parsed
            prefixes.add(prefix)
            found.setdefault((layer, direction), {})[name] = value
        if len(prefixes) > 1:
            raise ValueError(f"weights: expected one LSTM's parameters (one key prefix), got prefixes "
                             f"{sorted(prefixes)}")
        notes = [f"stripped the key prefix {next(iter(prefixes))!r}"] if prefixes != {""} else []
        n_layers = 1 + max(k for k, _ in found)
        n_dirs = 2 if any(d for _, d in found) else 1
        layers = []
        for k in range(n_layers):
            dirs = []
            for d in range(n_dirs):
                if (k, d) not in found:
                    raise ValueError(f"weights: expected {names_of.key(names_of.required[0], k, d)} and the rest "
                                     f"of layer {k}, not found")
                names = found[(k, d)]
                for required in names_of.required:
                    if required not in names:
                        raise ValueError(f"weights: expected {names_of.key(required, k, d)}, not found")
                if names_of.optional_biases is None or set(names_of.optional_biases) & set(names):
                    notes += _missing(framework, names, "", absent, key=lambda n: names_of.key(n, k, d))
                dirs.append(PACKINGS[framework].from_native(names, CANONICAL))
            layers.append(dirs)
        if names_of.optional_biases and not any(set(names_of.optional_biases) & set(n) for n in found.values()):
            notes.append(names_of.no_bias_note)
        return Model(layers, forget_bias, notes)

    return read


def _named_writer(framework: str):
    names_of = LAYER_NAMES[framework]

    def write(model: Model, forget_bias: float) -> dict:
        out = {}
        for k, dirs in enumerate(model.layers):
            for d, p in enumerate(dirs):
                native = _to_native(framework, p, model.forget_bias - forget_bias)
                out.update((names_of.key(name, k, d), value) for name, value in native.items())
        return out

    return write


def _read_onnx(weights, forget_bias, absent=frozenset()):
    layers = []
    grouped = _group(weights, "onnx", directions_in_names=False)
    for k, (names,) in enumerate(grouped):
        where = _prefix(k, 0, len(grouped), 1, directions_in_names=False)
        unknown = sorted(set(names) - {"W", "R", "B", "P"})
        if unknown:
            raise ValueError(f"weights: unexpected names for onnx: {[where + u for u in unknown]} "
                             f"(nothing is dropped silently)")
        if "W" not in names or "R" not in names:
            raise ValueError(f"weights: expected arrays named {where}'W' and {where}'R', not found "
                             f"(have {sorted(names)})")
        arrays = {key: np.asarray(value) for key, value in names.items()}
        n_dirs = arrays["W"].shape[0] if arrays["W"].ndim == 3 else 0
        if n_dirs not in (1, 2):
            raise ValueError(f"weights: {where}W: expected shape (num_directions, 4H, D) with num_directions "
                             f"1 or 2, got {arrays['W'].shape}")
        for key, value in arrays.items():
            if value.ndim < 1 or value.shape[0] != n_dirs:
                raise ValueError(f"weights: {where}{key}: expected num_directions = {n_dirs} on axis 0 like "
                                 f"W, got shape {value.shape}")
        layers.append([PACKINGS["onnx"].from_native({key: v[d] for key, v in arrays.items()}, CANONICAL)
                       for d in range(n_dirs)])
    return Model(layers, forget_bias)


def _write_onnx(model: Model, forget_bias: float) -> dict:
    out = {}
    n_layers = len(model.layers)
    for k, dirs in enumerate(model.layers):
        per_dir = [_to_native("onnx", p, model.forget_bias - forget_bias) for p in dirs]
        if len({frozenset(d) for d in per_dir}) != 1:
            raise ValueError("weights: expected peepholes in both directions or neither for onnx")
        prefix = _prefix(k, 0, n_layers, 1, directions_in_names=False)
        for key in per_dir[0]:
            out[prefix + key] = np.stack([d[key] for d in per_dir])
    return out


def _reader(framework: str):
    def read(weights: dict, forget_bias: float, absent=frozenset()) -> Model:
        grouped = _group(weights, framework)
        layers, notes = [], []
        for k, dirs in enumerate(grouped):
            layers.append([])
            for d, names in enumerate(dirs):
                where = _prefix(k, d, len(grouped), len(dirs))
                if not PACKINGS[framework].bias_optional:
                    notes += _missing(framework, names, where, absent)
                layers[-1].append(_from_native(framework, names, where))
        return Model(layers, forget_bias, notes)
    return read


def _missing(framework: str, names: dict, where: str, absent, *, suffix: str = "", key=None) -> list[str]:
    """Never invent a tensor: the names ``framework`` always stores that ``names`` lacks are an
    error, unless ``absent`` (``--absent``) names them; then they are zeros, and a note says so.
    A name is spelt ``where + name``, ``name + suffix``, or ``key(name)`` when given."""
    try:
        p = PACKINGS[framework].from_native(names, CANONICAL)
        expected = PACKINGS[framework].to_native(p, CANONICAL)
    except ValueError:
        return []  # the packing's own error, with its names, comes next
    notes = []
    for name in sorted(set(expected) - set(names)):
        full = key(name) if key else where + name if not suffix else name + suffix
        if name in absent or full in absent:
            notes.append(f"{full} is absent (--absent {name if name in absent else full}): taken as zero")
            continue
        raise ValueError(f"weights: expected an array named {full!r}, not found: {framework} always stores it "
                         f"and nothing is invented; if the source really has none, pass --absent {name} to "
                         f"take it as zero")
    return notes


def _writer(framework: str):
    def write(model: Model, forget_bias: float) -> dict:
        out = {}
        n_layers, n_dirs = len(model.layers), len(model.layers[0])
        for k, dirs in enumerate(model.layers):
            for d, p in enumerate(dirs):
                prefix = _prefix(k, d, n_layers, n_dirs)
                out.update((prefix + name, value) for name, value in
                           _to_native(framework, p, model.forget_bias - forget_bias).items())
        return out
    return write


def _from_native(framework: str, names: dict, where: str) -> LSTMParams:
    try:
        return PACKINGS[framework].from_native(names, CANONICAL)
    except ValueError as exc:
        if not where:
            raise
        raise ValueError(f"{exc} (in {where})") from None


def _to_native(framework: str, p: LSTMParams, fold: float) -> dict:
    try:
        return PACKINGS[framework].to_native(p, CANONICAL, forget_bias=fold)
    except ValueError as exc:
        raise ValueError(f"--to {framework}: {str(exc).split(': ', 1)[-1]}") from None


READERS = {name: _reader(name) for name in FRAMEWORKS}
READERS.update({name: _named_reader(name) for name in LAYER_NAMES}, onnx=_read_onnx)
WRITERS = {name: _writer(name) for name in FRAMEWORKS}
WRITERS.update({name: _named_writer(name) for name in LAYER_NAMES}, onnx=_write_onnx)


# ------------------------------------------------------------------------------------------
# API

def read(weights: dict, framework: str, *, forget_bias: float | None = None, absent=()) -> Model:
    """Native named arrays of ``framework`` -> Model.  ``forget_bias``: tf1's run-time forget bias
    (default 1.0); the other frameworks have none.  ``absent``: names the caller says the source
    does not have (taken as zero); any other missing name that the framework always stores is an
    error.  Integer arrays become float32 (a note says so); other non-float arrays are refused."""
    framework = _framework(framework, "--from")
    fb = _forget_bias(framework, forget_bias)
    if not weights:
        raise ValueError("weights: expected named arrays, got an empty file")
    weights, notes = floating(weights)
    model = READERS[framework](weights, fb, frozenset(absent))
    model.notes[:0] = notes
    model.framework = framework
    _validate(model)
    return model


def floating(weights: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays as floating point: integers and booleans become float32 (noted), anything
    else that is not a real float (complex, strings, objects) is refused by name."""
    out, converted = {}, []
    for key, value in weights.items():
        a = np.asarray(value)
        if a.dtype.kind in "iub":
            converted.append(f"{key} ({a.dtype.name})")
            a = a.astype(np.float32)
        elif a.dtype.kind != "f":
            raise ValueError(f"weights: {key}: expected a floating-point array, got dtype {a.dtype.name}")
        out[key] = a
    notes = [f"converted integer arrays to float32: {', '.join(converted)}"] if converted else []
    return out, notes


def write(model: Model, framework: str, *, forget_bias: float | None = None) -> dict[str, np.ndarray]:
    """Model -> native named arrays of ``framework`` (``forget_bias``: tf1's run-time forget bias)."""
    framework = _framework(framework, "--to")
    refuse_options(model, framework)
    return WRITERS[framework](model, _forget_bias(framework, forget_bias))


#: The adapter whose Capabilities say what each packing's LSTM can compute beyond its weights
#: (activations, a gate clip, a reverse-only layer): the one home of that knowledge.
CAPABILITIES_OF = {"torch": "torch", "keras": "keras3-tf", "tf1": "tf-lstmcell", "cntk": "cntk",
                   "onnx": "onnxruntime", "flax": "flax-linen", "flax_nnx": "flax-nnx",
                   "mxnet": "mxnet-lstm", "chainer": "chainer-lstm", "chainer_nstep": "chainer-nstep"}


def capabilities(framework: str):
    """The Capabilities of ``framework``'s adapter class (imported, not instantiated: no
    framework is needed), or None when its module cannot be imported here (Flax's needs jax)."""
    import importlib

    from adapters import BACKENDS

    module, _, attribute = BACKENDS[CAPABILITIES_OF[framework]].partition(":")
    try:
        return getattr(importlib.import_module(module), attribute).capabilities
    except ImportError:
        return None


def refuse_options(model: Model, framework: str) -> None:
    """ValueError when ``framework``'s LSTM cannot compute what ``model`` computes beyond its
    weights: a recurrent activation or activation it lacks, a gate clip, a reverse-only layer
    (its outputs' time order differs between frameworks: only the same framework holds it)."""
    if model.refusal:
        raise ValueError(f"--to {framework}: the LSTM{_named(model)} cannot be converted: {model.refusal}")
    wanted = []
    if model.recurrent_activation != "sigmoid":
        wanted.append(("recurrent_activations", model.recurrent_activation, "recurrent activation"))
    if model.activation != "tanh":
        wanted.append(("activations", model.activation, "activation"))
    caps = capabilities(framework) if wanted or model.gate_clip is not None else None
    for field_name, value, what in wanted:
        if caps is None or value not in getattr(caps, field_name):
            why = "" if caps is None else f" ({caps.why_not[value]})" if value in caps.why_not else \
                f" (it has {', '.join(getattr(caps, field_name))})"
            raise ValueError(f"--to {framework}: the LSTM{_named(model)} uses the {what} {value!r}, which "
                             f"{framework}'s LSTM cannot compute{why}")
    if model.gate_clip is not None and (caps is None or "gate_clip" not in caps.features):
        raise ValueError(f"--to {framework}: the LSTM{_named(model)} clips its gate pre-activations at "
                         f"{model.gate_clip:g} (ONNX clip), which {framework}'s LSTM cannot do")
    if model.reverse and framework != model.framework:
        raise ValueError(f"--to {framework}: the LSTM{_named(model)} is a reverse-only layer; frameworks "
                         f"differ in what a reverse-only layer outputs (time order, which torch cannot "
                         f"express at all), so it converts only to {model.framework}")


def _named(model: Model) -> str:
    return f" {model.name!r}" if model.name else ""


def convert(weights: dict, from_framework: str, to_framework: str, *, forget_bias: float | None = None,
            input_size: int | None = None, absent=()) -> tuple[dict[str, np.ndarray], list[str]]:
    """Named arrays of one framework -> those of another, and notes on what was combined."""
    model = read(weights, from_framework, forget_bias=forget_bias, absent=absent)
    if input_size is not None:
        actual = model.layers[0][0].input_size
        if actual != input_size:
            raise ValueError(f"--input-size: expected the input size of the weights, {actual}, "
                             f"got {input_size}")
    return convert_model(model, to_framework, forget_bias=forget_bias)


def convert_model(model: Model, to_framework: str, *, forget_bias: float | None = None
                  ) -> tuple[dict[str, np.ndarray], list[str]]:
    """A Model -> the named arrays of ``to_framework``, and notes on what was combined (the
    model's own notes first)."""
    out = write(model, to_framework, forget_bias=forget_bias)
    notes = list(model.notes)
    src, dst = model.framework or "torch", _framework(to_framework, "--to")
    second = [q.recurrent_bias for dirs in model.layers for q in dirs if q.recurrent_bias is not None]
    if any(np.any(b) for b in second) and "recurrent_bias" not in PACKINGS[dst].holds:
        notes.append(f"summed the two biases into {dst}'s one bias (one addition per element; the "
                     f"split is lost)")
    fb_src, fb_dst = _forget_bias(src, forget_bias), _forget_bias(dst, forget_bias)
    if fb_src != fb_dst:
        verb = "added" if fb_src > fb_dst else "subtracted"
        where = "to" if fb_src > fb_dst else "from"
        notes.append(f"{verb} {abs(fb_src - fb_dst):g} {where} the forget block of the bias (tf1's run-time "
                     f"forget_bias={fb_src if src == 'tf1' else fb_dst:g}; pass --forget-bias to change it)")
    return out, notes


def _framework(name: str, argument: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    aliases = {"pytorch": "torch", "tf": "tf1", "tensorflow1": "tf1", "keras2": "keras", "keras3": "keras",
               "tf_keras": "keras", "nnx": "flax_nnx", "flax_linen": "flax"}
    key = aliases.get(key, key)
    if key not in FRAMEWORKS:
        raise ValueError(f"{argument}: expected one of {list(FRAMEWORKS)}, got {name!r}")
    return key


def _forget_bias(framework: str, forget_bias: float | None) -> float:
    """The run-time forget bias of ``framework``'s side: tf1's (default 1.0, or --forget-bias),
    none for the others."""
    default = PACKINGS[framework].runtime_forget_bias
    if not default:
        return 0.0
    value = default if forget_bias is None else float(forget_bias)
    if not np.isfinite(value):
        raise ValueError(f"--forget-bias: expected a finite number, got {forget_bias!r}")
    return value


def _validate(model: Model):
    from reference.spec import LSTMSpec, check_params

    for k, dirs in enumerate(model.layers):
        for d, p in enumerate(dirs):
            spec = LSTMSpec(use_peepholes=p.peephole is not None,
                            proj_size=None if p.projection is None else int(np.shape(p.projection)[1]))
            check_params(p, spec, argument=f"layer {k} {DIRECTION_NAMES[d]}")


# ------------------------------------------------------------------------------------------
# Command line

def add_arguments(parser) -> None:
    import argparse

    from .model_files import FORMATS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    # The docstring's section on names, as plain text for a terminal (no reST ``literal`` markup).
    doc = __doc__.split("Names per framework", 1)[1].split("Exactness:", 1)[0].replace("``", "")
    formats = "\n".join(f"  {f.name:<14}{', '.join(f.extensions):<16}{f.description}"
                        + (f" (written for: {', '.join(f.writes)})" if f.writes else " (read only)")
                        for f in FORMATS.values())
    parser.epilog = ("file formats (from the extension; --format / --to-format override it):\n" + formats
                     + "\n\nnames per framework" + doc.rstrip() + "\n\n" + (parser.epilog or ""))
    choices = ", ".join(FRAMEWORKS)
    parser.add_argument("--from", dest="source", default=None, metavar="FRAMEWORK",
                        help=f"whose names a file of named arrays has (.npz, .safetensors, .msgpack): one of "
                             f"{choices}; model files say it themselves, and torch and Flax names are recognised")
    parser.add_argument("--to", dest="target", default=None, metavar="FRAMEWORK", help=f"one of {choices}")
    parser.add_argument("input", metavar="IN", help="the model file or .npz to read")
    parser.add_argument("output", metavar="OUT", nargs="?", default=None,
                        help="the file to write, in the target framework's format (its extension says which)")
    parser.add_argument("--list", action="store_true",
                        help="list every LSTM in IN (name, layers, directions, sizes, biases, dtype, conventions) "
                             "and write nothing")
    parser.add_argument("--layer", default=None, metavar="NAME",
                        help="convert only the LSTM of this name (or number) in --list; default: all of them")
    parser.add_argument("--format", default=None, metavar="FORMAT", help="the format of IN, when its name does "
                        "not say it")
    parser.add_argument("--to-format", default=None, metavar="FORMAT", help="the format of OUT, when its name "
                        "does not say it")
    parser.add_argument("--absent", action="append", default=[], metavar="NAME",
                        help="an array the source really does not have (e.g. bias_hh, or bias_hh_l0): taken as "
                             "zero; without it a missing array is an error (nothing is invented)")
    parser.add_argument("--forget-bias", type=float, default=None, metavar="F",
                        help=f"the run-time forget bias of the tf1 side (default "
                             f"{PACKINGS['tf1'].runtime_forget_bias:g}, TF's LSTMCell default); folded into or out of "
                             "the other side's bias")
    parser.add_argument("--input-size", type=int, default=None, metavar="D",
                        help="check that the weights have this input size")
    parser.add_argument("--verify", action="store_true",
                        help="after converting, run the source and the output in their frameworks against the "
                             "reference (what `port` does)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def listing(path, fmt, models: list[Model]) -> list[str]:
    """The lines of ``convert --list``."""
    lines = [f"{path}: {len(models)} LSTM{'s' if len(models) != 1 else ''} ({fmt.name})"]
    for k, model in enumerate(models):
        lines.append(f"  [{k}] {model.name or '(the file)'}: {model.framework}, {model.describe()}")
        for text in model.conventions:
            lines.append(f"      {text}")
        for note in model.notes:
            lines.append(f"      note: {note}")
        if model.refusal:
            lines.append(f"      cannot be converted: {model.refusal}")
    return lines


def model_json(model: Model) -> dict:
    p = model.layers[0][0]
    return {"name": model.name, "framework": model.framework, "layers": len(model.layers),
            "direction": model.direction, "input_size": p.input_size, "hidden_size": p.hidden_size,
            "projection_size": None if p.projection is None else p.output_size,
            "biases": 2 if p.recurrent_bias is not None else 0 if p.bias is None else 1,
            "dtype": model.dtype(), "recurrent_activation": model.recurrent_activation,
            "activation": model.activation, "conventions": model.conventions, "notes": model.notes,
            "refusal": model.refusal or None}


def run(args) -> int:
    from .model_files import read_models, select, write_models

    if not args.list and (args.target is None or args.output is None):
        print("error: convert needs --to FRAMEWORK and OUT (or --list to list the LSTMs of IN)")
        return 3
    try:
        fmt, models = read_models(args.input, format=args.format, framework=args.source,
                                  forget_bias=args.forget_bias, absent=args.absent)
        if args.list:
            if args.json:
                print(json.dumps({"input": args.input, "format": fmt.name,
                                  "lstms": [model_json(m) for m in models]}, indent=2))
            else:
                print("\n".join(listing(args.input, fmt, models)))
            return 0
        models = select(models, args.layer, args.input)
        if args.input_size is not None:
            for model in models:
                if model.layers[0][0].input_size != args.input_size:
                    raise ValueError(f"--input-size: expected the input size of the weights, "
                                     f"{model.layers[0][0].input_size}, got {args.input_size}")
        written = write_models(args.output, models, args.target, format=args.to_format,
                               forget_bias=args.forget_bias)
    except ValueError as exc:
        print(f"error: {exc}")
        return 3
    if args.json:
        print(json.dumps({"from": models[0].framework, "to": written[0].framework, "input": args.input,
                          "written": [{"output": str(w.path), "lstms": [m.name for m in w.models],
                                       "models": [m.describe() for m in w.models], "dtype": w.dtype,
                                       "notes": w.notes, "arrays": {k: list(v) for k, v in w.arrays.items()}}
                                      for w in written],
                          "output": str(written[0].path), "model": models[0].describe(), "notes": written[0].notes,
                          "arrays": {k: list(v) for k, v in written[0].arrays.items()}}, indent=2))
    else:
        for model in models:
            label = f" {model.name}" if model.name else ""
            print(f"read {args.input}{label} as {model.framework}: {model.describe()}")
        for w in written:
            for note in w.notes:
                print(f"  {note}")
            arrays = ", ".join(f"{k} {tuple(v)}" for k, v in w.arrays.items())
            print(f"wrote {w.path} as {w.framework} ({w.dtype}): {arrays}")
    if args.verify:
        from .port import verify_written

        return verify_written(args, models, written)
    return 0
