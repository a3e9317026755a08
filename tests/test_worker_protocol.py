"""The out-of-process worker protocol (adapters/worker_protocol.py) against a fake worker that
uses a real worker script's framing: round trips, structured errors, crashes, hangs, garbage,
pickles refused, a fresh worker after each failure, no orphan processes.  No framework needed."""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adapters.worker_protocol import (
    MAGIC,
    ProtocolError,
    Worker,
    WorkerConfig,
    WorkerCrashed,
    WorkerError,
    WorkerTimeout,
    decode_arrays,
    encode_arrays,
    encode_frame,
    join_items,
    read_frame_from,
    split_items,
)

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "workers" / "fake_worker.py"
WORKER_SCRIPTS = ["cntk_worker", "tf1_worker", "mxnet_worker", "chainer_worker"]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def fake_worker(script: str = "cntk_worker") -> Worker:
    return Worker(WorkerConfig(command=[sys.executable, str(FAKE), script], timeout=5.0,
                               start_timeout=30.0, name=f"fake {script}"))


@pytest.fixture
def worker():
    """A fake worker speaking through the framing every worker script imports
    (test_every_worker_script_uses_the_one_framing_module)."""
    w = fake_worker()
    yield w
    w.close()


# ---- frames

def test_frame_round_trip():
    arrays = {"x": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "lengths": np.array([3, 1]),
              "f64": np.array([np.nan, np.inf, -0.0, 1e-310]), "empty": np.zeros((0, 3)),
              "f16": np.array([1.5, -2.0], np.float16)}
    meta = {"op": "run", "spec": {"cell_clip": None, "forget_bias": 1.0}, "unicode": "\u00e9"}
    meta2, arrays2 = read_frame_from(io.BytesIO(encode_frame(meta, arrays)))
    assert meta2 == meta
    assert sorted(arrays2) == sorted(arrays)
    for name, value in arrays.items():
        assert arrays2[name].dtype == value.dtype and arrays2[name].shape == value.shape
        np.testing.assert_array_equal(arrays2[name], value)


def test_frame_without_arrays_and_batched_names():
    meta, arrays = read_frame_from(io.BytesIO(encode_frame({"op": "x"})))
    assert meta == {"op": "x"} and arrays == {}
    items = [{"a": np.ones(2)}, {}, {"b": np.zeros(1), "a": np.arange(3)}]
    back = split_items(join_items(items), 3)
    assert [sorted(i) for i in back] == [["a"], [], ["a", "b"]]
    with pytest.raises(ProtocolError, match="batched array name"):
        split_items({"7/a": np.ones(1)}, 3)


def test_pickles_are_never_written_nor_read():
    with pytest.raises(ValueError, match="object arrays would need pickle"):
        encode_arrays({"bad": np.array([{"a": 1}], dtype=object)})
    buffer = io.BytesIO()
    np.savez(buffer, bad=np.array([{"a": 1}], dtype=object))  # what a hostile peer could send
    with pytest.raises(ProtocolError, match="refused an .npz payload"):
        decode_arrays(buffer.getvalue())
    with pytest.raises(ProtocolError, match="could not be read"):
        decode_arrays(b"not a zip file")


def test_bad_frames_are_refused():
    with pytest.raises(ProtocolError, match="expected a frame starting with"):
        read_frame_from(io.BytesIO(b"garbage!" * 4))
    body = b"[1, 2]"
    frame = MAGIC + len(body).to_bytes(4, "big") + body + (0).to_bytes(8, "big")
    with pytest.raises(ProtocolError, match="expected a JSON object"):
        read_frame_from(io.BytesIO(frame))
    with pytest.raises(ValueError, match="meta: expected a dict"):
        encode_frame(["not", "a", "dict"])


# ---- a live worker

@pytest.mark.parametrize("script", WORKER_SCRIPTS)
def test_round_trip_with_a_worker(script):
    worker = fake_worker(script)
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    reply, out = worker.request({"op": "echo", "payload": [1, "two"]}, {"x": x, "n": np.array([1, 2, 3])})
    assert reply["status"] == "ok" and reply["echo"] == [1, "two"] and reply["names"] == ["n", "x"]
    np.testing.assert_array_equal(out["x"], x)
    assert worker.hello["version"] == "0.fake"
    worker.close()


def test_many_requests_share_one_process(worker):
    pids = {worker.request({"op": "pid"})[0]["pid"] for _ in range(20)}
    assert len(pids) == 1 and worker.starts == 1


def test_an_exception_fails_the_case_with_the_worker_traceback(worker):
    pid = worker.request({"op": "pid"})[0]["pid"]
    with pytest.raises(WorkerError) as info:
        worker.request({"op": "raise", "why": "testing"})
    assert info.value.type_name == "ValueError"
    assert "the worker raised on purpose: testing" in str(info.value)
    assert "Traceback" in info.value.worker_traceback and "op_raise" in info.value.worker_traceback
    assert worker.request({"op": "pid"})[0]["pid"] == pid  # the worker lives on


def test_unsupported_is_a_reply_not_a_failure(worker):
    reply, _ = worker.request({"op": "unsupported"})
    assert reply == {"status": "unsupported", "message": "not expressible here"}


@pytest.mark.parametrize("op, expected", [("kill", r"killed by signal SIGKILL"),
                                          ("segfault", r"killed by signal SIGSEGV"),
                                          ("die", r"exit status 3")])
def test_a_worker_that_dies_mid_case_is_reported_and_replaced(worker, op, expected):
    first = worker.request({"op": "pid"})[0]["pid"]
    with pytest.raises(WorkerCrashed) as info:
        worker.request({"op": op})
    message = str(info.value)
    assert re.search(expected, message), message
    assert "worker stderr (tail)" in message and "about to" in info.value.stderr_tail
    assert not pid_alive(first)
    second = worker.request({"op": "pid"})[0]["pid"]
    assert second != first and worker.starts == 2


def test_a_worker_that_never_answers_times_out_and_is_replaced(worker):
    first = worker.request({"op": "pid"})[0]["pid"]
    started = time.monotonic()
    with pytest.raises(WorkerTimeout) as info:
        worker.request({"op": "hang"}, timeout=0.5)
    assert time.monotonic() - started < 5
    assert "no answer within 0.5 s" in str(info.value) and "hanging now" in info.value.stderr_tail
    assert not pid_alive(first)
    assert worker.request({"op": "pid"})[0]["pid"] != first


def test_garbage_on_stdout_is_a_protocol_error_and_the_next_case_gets_a_fresh_worker(worker):
    first = worker.request({"op": "pid"})[0]["pid"]
    with pytest.raises(ProtocolError, match="expected a frame starting with"):
        worker.request({"op": "garbage"})
    assert not pid_alive(first)
    assert worker.request({"op": "echo", "payload": 1})[0]["echo"] == 1


def test_a_pickled_payload_from_the_worker_is_refused(worker):
    with pytest.raises(ProtocolError, match="refused an .npz payload"):
        worker.request({"op": "pickle"})
    assert worker.request({"op": "echo", "payload": 2})[0]["echo"] == 2


def test_a_pickled_payload_to_the_worker_is_refused(worker):
    worker.start()
    buffer = io.BytesIO()
    np.savez(buffer, bad=np.array([{"a": 1}], dtype=object))
    body = b'{"op": "echo"}'
    npz = buffer.getvalue()
    worker._proc.stdin.write(MAGIC + len(body).to_bytes(4, "big") + body + len(npz).to_bytes(8, "big") + npz)
    worker._proc.stdin.flush()
    reply, _ = worker._receive(5.0, "the refusal")
    assert reply["status"] == "error" and "refused an .npz payload" in reply["message"]
    assert "allow_pickle" in reply["message"]


def test_framework_chatter_on_stdout_goes_to_stderr(worker):
    reply, _ = worker.request({"op": "chatter"})
    assert reply["chatted"] is True
    assert worker.request({"op": "echo", "payload": 3})[0]["echo"] == 3
    time.sleep(0.1)
    assert "chatter on file descriptor 1" in worker.stderr_tail()


def test_batch_of_requests_in_one_round_trip(worker):
    items = [{"op": "echo", "payload": 1}, {"op": "raise", "why": "second"}, {"op": "unsupported"},
             {"op": "echo", "payload": 4}]
    arrays = join_items([{"x": np.ones(2)}, {}, {}, {"y": np.zeros(3)}])
    reply, out = worker.request({"op": "batch", "items": items}, arrays)
    statuses = [item["status"] for item in reply["items"]]
    assert statuses == ["ok", "error", "unsupported", "ok"]
    assert "second" in reply["items"][1]["message"]
    per_item = split_items(out, 4)
    np.testing.assert_array_equal(per_item[0]["x"], np.ones(2))
    np.testing.assert_array_equal(per_item[3]["y"], np.zeros(3))


def test_close_kills_the_process_group_no_orphans(worker):
    pid = worker.request({"op": "pid"})[0]["pid"]
    child = worker.request({"op": "spawn"})[0]["child"]
    assert pid_alive(child)
    worker.close()
    deadline = time.monotonic() + 5
    while (pid_alive(pid) or pid_alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid) and not pid_alive(child)


def test_a_worker_that_cannot_start_is_reported(monkeypatch):
    monkeypatch.setenv("FAKE_WORKER_FAIL_AT_START", "1")
    w = Worker(WorkerConfig(command=[sys.executable, str(FAKE)], timeout=5, start_timeout=30))
    with pytest.raises(WorkerCrashed, match="exit status 4") as info:
        w.request({"op": "pid"})
    assert "no framework here" in info.value.stderr_tail
    w.close()
    missing = Worker(WorkerConfig(command=["/nonexistent/python3.6", "x.py"]))
    with pytest.raises(WorkerCrashed, match="could not start"):
        missing.request({"op": "pid"})


# ---- the worker scripts themselves

def test_every_worker_script_uses_the_one_framing_module():
    """The framing lives once, in worker_framing.py; a worker script imports it and defines none
    of its own (a copy would drift from the host's side of the protocol)."""
    for name in WORKER_SCRIPTS:
        text = (ROOT / "adapters" / "workers" / f"{name}.py").read_text()
        assert "from worker_framing import UnsupportedCase, serve" in text, name
        for own in ("def read_frame", "def write_frame", "MAGIC =", "def serve"):
            assert own not in text, f"{name}.py defines {own!r} itself"


@pytest.mark.parametrize("name", WORKER_SCRIPTS + ["worker_framing"])
def test_worker_scripts_parse_as_python36(name):
    source = (ROOT / "adapters" / "workers" / f"{name}.py").read_text()
    ast.parse(source, filename=f"{name}.py", feature_version=(3, 6))
    assert "from __future__ import annotations" not in source  # 3.7+
    assert "pickle" not in re.sub(r"allow_pickle|#.*|\"\"\".*?\"\"\"|\"[^\"\n]*\"", "", source, flags=re.S)


def _old_python(minor):
    from adapters.worker_env import ENVS, SetupError, find_python

    env = next(e for e in ENVS.values() if minor in e.pythons)
    try:
        return find_python(env.__class__(**{**env.__dict__, "pythons": (minor,)}))[0]
    except SetupError:
        return None


@pytest.mark.parametrize("minor", ["3.6", "3.7", "3.8"])
def test_worker_scripts_compile_with_the_old_interpreter(minor):
    python = _old_python(minor)
    if python is None:
        pytest.skip(f"CPython {minor} is not installed (install it with `pyenv install "
                    f"{ {'3.6': '3.6.15', '3.7': '3.7.16'}.get(minor, '3.8.18') }`); the ast check above still ran")
    scripts = [str(ROOT / "adapters" / "workers" / f"{n}.py") for n in WORKER_SCRIPTS]
    code = ("import sys\nfor path in sys.argv[1:]:\n"
            "    compile(open(path).read(), path, 'exec')\nprint('compiled', len(sys.argv) - 1)")
    result = subprocess.run([python, "-c", code, *scripts], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    assert f"compiled {len(WORKER_SCRIPTS)}" in result.stdout
