"""``python -m conformance port``: convert a model file and prove it (``convert --verify`` is the
same).

    python -m conformance port --to onnx model.pt model.onnx
    python -m conformance port --to torch model.keras model.safetensors [--layer NAME] [--examples N]

After converting, each LSTM runs twice on the same drawn inputs: the source file's weights in the
source framework and the written file in the target framework, each through this project's
adapter of that framework (``adapters``; the weights of the written file are read back from it),
and the written file also as it is where the target has a whole-file runner (an .onnx file run
by ONNX Runtime as written; a torch .safetensors loaded by ``nn.LSTM.load_state_dict``).  The
inputs: zero and given initial states, per-sequence lengths, and long sequences (100 steps), in
float32.  Each run is compared with the reference and the two with each other (at the valid
steps of each sequence, and the final states), with the tolerance table's float32 tolerance;
the report gives the largest errors and the first diverging time step.

Exit status: 0 when both sides conform and agree; 1 when one does not (the report says which and
where); 3 for a usage, input or setup error, e.g. a framework that is not installed here (the
message says which tox env or package runs that half).
"""

from __future__ import annotations

import numpy as np

from . import convert as cv

#: The adapter that runs a packing's weights, and where it is installed.
RUNNERS = {"torch": "torch", "keras": "keras3", "onnx": "onnxruntime", "flax": "flax-linen",
           "flax_nnx": "flax-nnx", "tf1": "tf-lstmcell", "cntk": "cntk"}
ENVS = {"torch": "tox -e ports or tox -e torch (pip install torch==2.13.0)",
        "keras3": "tox -e ports (Keras 3 on torch), or keras-tf, keras-jax, keras-torch (pip install keras==3.15.1 "
                  "and a backend)",
        "tf-keras": "tox -e tf-keras (tensorflow-cpu==2.21.0 and tf_keras)",
        "onnxruntime": "tox -e ports or tox -e onnxruntime (pip install onnxruntime==1.31.1)",
        "flax-linen": "tox -e ports or tox -e flax (pip install flax==0.12.8)",
        "flax-nnx": "tox -e ports or tox -e flax (pip install flax==0.12.8)",
        "tf-lstmcell": "tox -e tf (tensorflow-cpu==2.21.0 and tf_keras)",
        "cntk": "tox -e cntk (a CPython 3.6 worker)"}
#: (label, steps, initial state, lengths, tolerance quantity)
KINDS = (("zero state", 7, False, False, "forward"), ("initial state", 7, True, False, "forward"),
         ("lengths", 9, True, True, "forward"), ("long sequence", 100, True, False, "long_sequence"))
BATCH = 3


def add_arguments(parser) -> None:
    cv.add_arguments(parser)
    parser.add_argument("--examples", type=int, default=3, metavar="N",
                        help="drawn examples of each kind (zero state, initial state, lengths, long sequence)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="the seed of the drawn inputs")


def run(args) -> int:
    if args.list:
        print("error: port converts and proves; use convert --list to list the LSTMs of a file")
        return 3
    args.verify = True
    return cv.run(args)


def runner_of(model: cv.Model) -> str:
    if model.framework == "keras" and any(c.startswith("Keras 2") for c in model.conventions):
        return "tf-keras"
    return RUNNERS[model.framework]


def load(backend: str, side: str, path):
    import importlib.util
    import os
    import sys

    from adapters import load_adapter

    if backend == "keras3" and "KERAS_BACKEND" not in os.environ and "keras" not in sys.modules:
        # Keras 3 on whichever backend is installed here (keras reads KERAS_BACKEND once, at import).
        found = [b for b in ("torch", "jax", "tensorflow") if importlib.util.find_spec(b) is not None]
        if found:
            os.environ["KERAS_BACKEND"] = found[0]
    try:
        return load_adapter(backend)
    except Exception as exc:  # an ImportError wrapped by load_adapter, or the framework's own
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SetupError(f"the {side} half ({path}) runs in {backend}, which cannot start here ({reason[:200]}): "
                         f"run port in {ENVS.get(backend, 'its tox env')}") from None


class SetupError(Exception):
    pass


def verify_written(args, models: list[cv.Model], written) -> int:
    """Run every converted LSTM on both sides and report; the exit status of port."""
    from .model_files import read_models

    examples = max(1, int(getattr(args, "examples", 3) or 3))
    seed = int(getattr(args, "seed", 0) or 0)
    failures = 0
    try:
        for w in written:
            try:
                _, back = read_models(w.path)
            except ValueError as exc:
                print(f"error: reading back {w.path}: {exc}")
                return 3
            if len(back) != len(w.models):
                print(f"error: {w.path} holds {len(back)} LSTMs after writing {len(w.models)}")
                return 1
            for source, target in zip(w.models, back):
                failures += _verify_one(args.input, source, w.path, target, examples, seed)
    except SetupError as exc:
        print(f"error: {exc}")
        return 3
    print(f"verdict: {'both sides conform and agree' if not failures else f'{failures} check(s) failed'}")
    return 1 if failures else 0


def _verify_one(in_path, source: cv.Model, out_path, target: cv.Model, examples: int, seed: int) -> int:
    from adapters.base import Case
    from conformance.harness.strategies import fill_padding, make_inputs, make_state, round_to
    from conformance.harness.tolerances import case_tolerance
    from conformance.harness.verdict import expected_for

    src_backend, dst_backend = runner_of(source), runner_of(target)
    src, dst = load(src_backend, "source", in_path), load(dst_backend, "target", out_path)
    native = _native_runner(target, out_path)
    print(f"port {in_path}{f' [{source.name}]' if source.name else ''} -> {out_path}: {source.describe()}")
    print(f"  source: {src.identity()} (adapter {src.name})")
    print(f"  target: {dst.identity()} (adapter {dst.name})" + (f"; and {native[0]}" if native else ""))
    failures = 0
    p0 = source.layers[0][0]
    dirs = len(source.layers[0])
    for label, steps, with_state, with_lengths, quantity in KINDS:
        rows = {"source": [], "target": [], "target file": [], "source vs target": []}
        skipped = []
        for k in range(examples):
            rng = np.random.default_rng([seed, KINDS.index((label, steps, with_state, with_lengths, quantity)), k])
            x = make_inputs(rng, BATCH, steps, p0.input_size, "moderate", "float32")
            state = ([make_state(rng, BATCH, p0.output_size, p0.hidden_size, "float32")
                      for _ in range(len(source.layers) * dirs)] if with_state else None)
            lengths = None
            if with_lengths:
                lengths = rng.integers(1, steps + 1, size=BATCH)
                lengths[0] = steps
                fill_padding(rng, x, lengths, "float32")
            outputs = {}
            for side, adapter, model in (("source", src, source), ("target", dst, target)):
                caps = adapter.capabilities
                missing = [f for f, need in (("initial_state", with_state), ("lengths", with_lengths),
                                             ("layers", len(model.layers) > 1),
                                             ("bidirectional", dirs == 2), ("reverse", model.reverse)) if need
                           and f not in caps.features]
                if missing or len(model.layers) > max(caps.max_layers, 1):
                    skipped.append(f"{side}: {adapter.name} lacks {', '.join(missing) or 'that many layers'}")
                    continue
                spec = model.spec().replace(length_semantics=caps.length_semantics_for(model.direction) or "zeros")
                layers = [[p.astype(np.float64) for p in dirs_] for dirs_ in model.layers]
                layers = [[type(p)(**{n: round_to(v, "float32") for n, v in p.arrays().items()}) for p in d]
                          for d in layers]
                case = Case(spec=spec, layers=layers, x=x, initial_state=state, lengths=lengths,
                            direction=model.direction, dtype="float32", origin={"seed": seed, "example": k})
                try:
                    actual = adapter.run(case)
                except Exception as exc:
                    print(f"  {label}: the {side} framework failed: {type(exc).__name__}: {str(exc)[:300]}")
                    failures += 1
                    continue
                expected = expected_for(adapter, case)
                tol, _ = case_tolerance(case, backend=adapter.name, quantity=quantity)
                rows[side].append(_compare(actual, expected, tol))
                outputs[side] = (actual, tol)
                if side == "target" and native and not with_lengths:
                    y, finals = native[1](x, state)
                    from adapters.base import Output

                    rows["target file"].append(_compare(Output(y, finals), expected, tol))
            if "source" in outputs and "target" in outputs:
                (a, tol), (b, _) = outputs["source"], outputs["target"]
                rows["source vs target"].append(_compare(_masked(a, lengths), _masked(b, lengths), tol.scaled(2.0)))
        failures += _print_kind(label, steps, rows, skipped)
    return failures


def _masked(output, lengths):
    from adapters.base import Output

    if lengths is None:
        return output
    y = np.array(output.y, dtype=np.float64)
    for row, n in enumerate(lengths):
        y[row, n:] = 0.0
    return Output(y, output.final)


def _compare(actual, expected, tol):
    """[(name, Comparison)] for y and every final state."""
    from conformance.harness.compare import compare

    out = [compare("y", actual.y, expected.y, tol, time_axis=1)]
    last = np.shape(expected.y)[1] - 1
    if len(actual.final) != len(expected.final):
        out.append(compare("final", np.zeros(len(actual.final)), np.zeros(len(expected.final)), tol))
    for k, ((h, c), (eh, ec)) in enumerate(zip(actual.final, expected.final)):
        out.append(compare(f"h_n[{k}]", h, eh, tol, final_step=last))
        out.append(compare(f"c_n[{k}]", c, ec, tol, final_step=last))
    return out


def _print_kind(label: str, steps: int, rows: dict, skipped: list[str]) -> int:
    failures = 0
    names = {"source": "source vs reference", "target": "target vs reference",
             "target file": "target file vs reference", "source vs target": "source vs target"}
    for key, results in rows.items():
        if not results:
            continue
        flat = [c for r in results for c in r]
        worst = max(flat, key=lambda c: c.ratio)
        bad = [c for c in flat if not c.ok]
        first = min((c.first_bad_step for c in bad if c.first_bad_step is not None), default=None)
        verdict = "ok" if not bad else "FAIL"
        text = (f"  {label:<14} T={steps:<4}{names[key]:<26}{len(results)} examples  max abs err "
                f"{max(c.max_abs for c in flat):.2g} ({worst.ratio:.2g} of the tolerance)  {verdict}")
        if bad:
            failures += 1
            text += f"; {bad[0].describe()}; first diverging step: " + (f"t={first}" if first is not None else "?")
        else:
            text += "; first diverging step: none"
        print(text)
    for line in sorted(set(skipped)):
        print(f"  {label:<14} not run: {line}")
    return failures


def _native_runner(model: cv.Model, path):
    """(what it is, run(x, state) -> (y, finals)) for the written file as a whole, where the
    target framework has a loader for the whole file; None otherwise."""
    from pathlib import Path

    path = Path(path)
    if model.framework == "onnx" and path.suffix == ".onnx":
        from .model_files import onnx_file

        data = path.read_bytes()
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return None
        return ("the written .onnx file run by ONNX Runtime as it is", lambda x, s: onnx_file.run(data, x, s))
    if model.framework == "torch" and path.suffix == ".safetensors":
        try:
            import torch
            from safetensors.torch import load_file
        except ImportError:
            return None
        p = model.layers[0][0]
        if p.bias is None:
            return None
        lstm = torch.nn.LSTM(p.input_size, p.hidden_size, num_layers=len(model.layers), batch_first=True,
                             bidirectional=model.bidirectional,
                             proj_size=0 if p.projection is None else p.output_size)
        lstm.load_state_dict(load_file(str(path)), strict=True)

        def run(x, state):
            with torch.no_grad():
                init = None
                if state is not None:
                    init = (torch.from_numpy(np.stack([h for h, _ in state]).astype(np.float32)),
                            torch.from_numpy(np.stack([c for _, c in state]).astype(np.float32)))
                y, (h, c) = lstm(torch.from_numpy(np.asarray(x, np.float32)), init)
            return y.double().numpy(), [(a.double().numpy(), b.double().numpy()) for a, b in zip(h, c)]

        return ("the written .safetensors loaded by nn.LSTM.load_state_dict(strict=True)", run)
    return None
