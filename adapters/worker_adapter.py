"""Base class of the adapters whose framework runs in a worker process (CNTK 2.7, TF 1.15, MXNet 1.9,
Chainer 7.8).

The host converts the reference parameters to the native packing (through reference.layout, in
the subclass's ``native_arrays``), sends them with the case as one frame, and turns the reply
back into an :class:`Output`.  The worker is one persistent process per adapter, started on the
first use (the suite's session-scoped adapter fixture keeps it for the whole session) and
restarted after a crash or a timeout.  ``close()`` kills its process group.

Array names in a frame: ``x`` (B, T, D), ``lengths`` (B,), ``h0_<k>`` / ``c0_<k>`` per layer and
direction (k = layer * num_directions + direction, the order of ``Case.initial_state``),
``L<layer>.<direction>.<native name>`` for the weights; replies hold ``y`` and ``h_<k>``/``c_<k>``.
"""

from __future__ import annotations

import os

import numpy as np

from reference import LSTMParams, LSTMSpec

from .base import Adapter, Case, Output, Unsupported
from .packings import Packing
from .worker_env import worker_command
from .worker_protocol import Worker, WorkerConfig, join_items, split_items

#: Seconds a single request may take before the worker is declared hung and killed.
DEFAULT_TIMEOUT = float(os.environ.get("LSTM_CONFORMANCE_WORKER_TIMEOUT", "120"))


class WorkerAdapter(Adapter):
    """An adapter whose framework lives in the worker of ``worker_env`` (see worker_env.ENVS).

    The weights travel in the framework's packing (``packing``, an entry of
    ``adapters.packings``), under its native names; a run-time forget bias the framework has is
    passed in the request (``forget_bias``), anything else it lacks is folded into its weights.
    """

    worker_env: str = "?"
    packing: Packing
    #: Which API variant the worker builds, sent with every request as "api" (None: the only one).
    api_name: str | None = None

    @property
    def worker_options(self) -> dict:
        """Extra keys sent with every request."""
        return {"api": self.api_name} if self.api_name else {}

    def __init__(self, *, timeout: float | None = None):
        self._worker: Worker | None = None
        self._timeout = DEFAULT_TIMEOUT if timeout is None else timeout

    # ---- the worker

    def worker(self) -> Worker:
        if self._worker is None:
            command, env = worker_command(self.worker_env)
            self._worker = Worker(WorkerConfig(command=command, env=env, timeout=self._timeout,
                                               name=f"{self.name} worker"))
        return self._worker

    def call(self, meta: dict, arrays: dict) -> dict[str, np.ndarray]:
        """One request; the reply's arrays.  Unsupported when the worker says the framework
        cannot express the case; WorkerError / WorkerCrashed / WorkerTimeout otherwise."""
        reply, out = self.worker().request(dict(meta, **self.worker_options), arrays)
        if reply.get("status") == "unsupported":
            raise Unsupported(reply.get("message", f"{self.name}: unsupported"))
        return out

    def call_many(self, requests: list[tuple[dict, dict]]) -> list[dict[str, np.ndarray] | Exception]:
        """Several requests in one round trip; one result (arrays) or exception per request."""
        from .worker_protocol import WorkerError

        items = [dict(meta, **self.worker_options) for meta, _ in requests]
        reply, out = self.worker().request({"op": "batch", "items": items},
                                           join_items([arrays for _, arrays in requests]))
        results: list = []
        for item, arrays in zip(reply.get("items", []), split_items(out, len(items))):
            status = item.get("status")
            if status == "ok":
                results.append(arrays)
            elif status == "unsupported":
                results.append(Unsupported(item.get("message", "")))
            else:
                results.append(WorkerError(str(item.get("type")), str(item.get("message")),
                                           str(item.get("traceback", ""))))
        return results

    def setup_problem(self) -> str | None:
        """Diagnosed once per adapter (the checks start interpreters)."""
        if not hasattr(self, "_setup_problem"):
            from .worker_env import diagnose

            self._setup_problem = diagnose(self.worker_env)
        return self._setup_problem

    def version(self) -> str:
        if self.setup_problem():
            return "not set up"
        return str(self.worker().start().get("version", "unknown"))

    def describe(self) -> dict:
        out = super().describe()
        problem = self.setup_problem()
        if problem:
            out["setup_problem"] = problem
            return out
        hello = self.worker().start()
        out["worker"] = {"python": hello.get("python"), "numpy": hello.get("numpy"),
                         "interpreter": self.worker().config.command[0]}
        return out

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()

    # ---- encoding a case

    def native_arrays(self, params: LSTMParams, spec: LSTMSpec) -> dict[str, np.ndarray]:
        """The weights of one layer and direction in the native packing, by native name: the
        forget bias is folded in unless the framework adds one itself at run time (then the
        request carries it)."""
        fold = 0.0 if self.packing.runtime_forget_bias else spec.forget_bias
        return self.packing.to_native(params, spec.gate_order, forget_bias=fold)

    def case_meta(self, case: Case) -> dict:
        p = case.params
        spec = case.spec
        return {"dtype": case.dtype, "input_size": p.input_size, "hidden_size": p.hidden_size,
                "output_size": p.output_size, "proj": bool(spec.proj_size),
                "peepholes": bool(spec.use_peepholes), "activation": spec.activation,
                "recurrent_activation": spec.recurrent_activation, "forget_bias": spec.forget_bias,
                "cell_clip": spec.cell_clip, "proj_clip": spec.proj_clip,
                "direction": case.direction, "layers": len(case.layers),
                "state": None if case.initial_state is None else "data",
                "lengths": case.lengths is not None}

    @staticmethod
    def transport_dtype(dtype: str) -> np.dtype:
        """The numpy dtype arrays of a ``dtype`` case travel in: bfloat16 (not a numpy dtype)
        travels as float32, which holds its values exactly; the worker casts."""
        return np.dtype("float32") if dtype == "bfloat16" else np.dtype(dtype)

    def case_arrays(self, case: Case) -> dict[str, np.ndarray]:
        dtype = self.transport_dtype(case.dtype)
        arrays = {"x": np.asarray(case.x, dtype)}
        if case.lengths is not None:
            arrays["lengths"] = np.asarray(case.lengths, np.int64)
        for k, layer in enumerate(case.layers):
            for d, params in enumerate(layer):
                for name, value in self.native_arrays(params, case.spec).items():
                    arrays[f"L{k}.{d}.{name}"] = np.asarray(value, dtype)
        if case.initial_state is not None:
            for index, (h0, c0) in enumerate(case.initial_state):
                arrays[f"h0_{index}"] = np.asarray(h0, dtype)
                arrays[f"c0_{index}"] = np.asarray(c0, dtype)
        return arrays

    def zero_state(self, case: Case) -> list[tuple[np.ndarray, np.ndarray]]:
        p = case.params
        count = len(case.layers) * case.num_directions
        return [(np.zeros((case.batch, p.output_size)), np.zeros((case.batch, p.hidden_size)))
                for _ in range(count)]

    def to_output(self, case: Case, out: dict[str, np.ndarray]) -> Output:
        count = len(case.layers) * case.num_directions
        finals = [(np.asarray(out[f"h_{k}"], np.float64), np.asarray(out[f"c_{k}"], np.float64))
                  for k in range(count)]
        return Output(np.asarray(out["y"], np.float64), finals)

    def gradients(self, case: Case, dy, dh, dc) -> dict:
        if case.initial_state is None:
            case = case.replace(initial_state=self.zero_state(case))
        dtype = self.transport_dtype(case.dtype)
        arrays = self.case_arrays(case)
        arrays.update(dy=np.asarray(dy, dtype), dh=np.asarray(dh, dtype), dc=np.asarray(dc, dtype))
        out = self.call(dict(self.case_meta(case), op="gradients", state="data"), arrays)
        grads = {"x": out["x"], "h0": out["h0"], "c0": out["c0"]}
        grads.update(self.packing.gradients(self.native_weight_gradients(case, out), case.params,
                                            case.spec.gate_order))
        return {k: np.asarray(v, np.float64) for k, v in grads.items()}

    def native_weight_gradients(self, case: Case, out: dict) -> dict[str, np.ndarray]:
        """The gradients of the native weights, by native name, from the worker's reply: it
        answers each as "param.<native name>" (an adapter that sends its weights otherwise, e.g.
        as MXNet's one flat vector, takes them apart here)."""
        return {k[len("param."):]: v for k, v in out.items() if k.startswith("param.")}

    def run(self, case: Case) -> Output:
        return self.to_output(case, self.call(dict(self.case_meta(case), op="run"), self.case_arrays(case)))

    # ---- the framework's own step and state APIs, driven inside the worker (one round trip)

    #: The worker has a "steps" op (the framework's single-step API, the state fed back) and a
    #: "stream" op (the framework carries the state itself between calls, then resets it); both
    #: serve one forward layer without lengths (:meth:`native_for`), the rest runs the defaults.
    native_step_op: bool = False
    native_stream_op: bool = False

    def native_for(self, case: Case) -> bool:
        """Whether the steps and stream ops serve ``case``: one forward layer without lengths."""
        return len(case.layers) == 1 and case.direction == "forward" and case.lengths is None

    def run_steps(self, case: Case) -> Output:
        if self.native_step_op and self.native_for(case):
            return self.native_steps(case)
        return Adapter.run_steps(self, case)

    def run_stream(self, case: Case, chunks: list[int]) -> tuple[list[Output], Output]:
        if self.native_stream_op and self.native_for(case):
            return self.native_stream(case, chunks)
        return Adapter.run_stream(self, case, chunks)

    def native_steps(self, case: Case) -> Output:
        """Request "steps": the worker drives the framework's single-step API over the sequence
        with each returned state fed back (zeros when the case has no initial state)."""
        if case.initial_state is None:
            case = case.replace(initial_state=self.zero_state(case))
        return self.to_output(case, self.call(dict(self.case_meta(case), op="steps"), self.case_arrays(case)))

    def native_stream(self, case: Case, chunks: list[int]) -> tuple[list[Output], Output]:
        """Request "stream": the worker feeds the chunks with the state carried by the framework
        itself, resets it, and runs the first chunk again; replies y_<k>, h_<k>, c_<k> per chunk
        and y_reset, h_reset, c_reset."""
        meta = dict(self.case_meta(case), op="stream", chunks=[int(n) for n in chunks], state=None)
        out = self.call(meta, self.case_arrays(case))

        def output(suffix):
            return Output(np.asarray(out[f"y_{suffix}"], np.float64),
                          [(np.asarray(out[f"h_{suffix}"], np.float64), np.asarray(out[f"c_{suffix}"], np.float64))])

        return [output(k) for k in range(len(chunks))], output("reset")
