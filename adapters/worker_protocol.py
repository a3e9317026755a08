"""The host side of the out-of-process worker protocol (CNTK 2.7, TF 1.15: frameworks that need an
old CPython run in a persistent worker process of their own interpreter).

Framing, over the worker's stdin (requests) and stdout (replies); the worker prints nothing else
on stdout (it points file descriptor 1 at stderr before importing its framework)::

    frame   = MAGIC (4 bytes b"LCW1")
              json_len (uint32, big-endian)  json   (UTF-8 JSON object: the metadata)
              npz_len  (uint64, big-endian)  npz    (numpy .npz bytes, possibly empty: the arrays)

Arrays travel as .npz bytes written with ``numpy.savez`` and read with ``allow_pickle=False``:
an object array (a pickle) inside an .npz is refused on either side.  Nothing is ever pickled.

A request is ``{"op": NAME, ...}``; a reply is ``{"status": "ok", ...}``, ``{"status": "error",
"type", "message", "traceback"}`` (an exception in the worker: the case fails, the worker lives
on) or ``{"status": "unsupported", "message"}`` (the framework cannot express the case).
``{"op": "batch", "items": [request, ...]}`` carries several requests in one round trip (their
arrays named ``"<index>/<name>"``) and is answered ``{"status": "ok", "items": [reply, ...]}``,
one structured reply per item; the adapters also keep whole loops (single steps with the state
fed back, the chunks of a stateful stream) inside one request.  ``{"op": "exit"}`` ends a worker.

Failures of the worker itself are reported as :class:`WorkerCrashed` (it died: killed, os._exit,
a segfault), :class:`WorkerTimeout` (no reply within the per-request timeout: it is killed) and
:class:`ProtocolError` (it wrote something that is not a frame: it is killed), each with the tail
of its stderr.  After any of these the next request starts a fresh worker.  Workers run in their
own process group, which is killed on close, on timeout and at interpreter exit, so no process is
left behind and the suite never hangs.

The worker side of the framing is adapters/workers/worker_framing.py, which every worker script
imports as a sibling module: the scripts are standalone programs for an old interpreter and
import nothing from the project itself.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import select
import signal
import struct
import subprocess
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"LCW1"
_JSON_LEN = struct.Struct(">I")
_NPZ_LEN = struct.Struct(">Q")
#: Refuse absurd lengths before allocating (a garbage header must not exhaust memory).
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_NPZ_BYTES = 4 * 1024 * 1024 * 1024
STDERR_TAIL_BYTES = 16 * 1024


class WorkerFailure(RuntimeError):
    """Base of every failure reported by the protocol; ``stderr_tail`` holds what the worker
    wrote to stderr last (empty when it is not a process failure)."""

    def __init__(self, message: str, *, stderr_tail: str = ""):
        self.stderr_tail = stderr_tail
        if stderr_tail:
            message += "\n--- worker stderr (tail) ---\n" + stderr_tail.rstrip() + "\n--- end of worker stderr ---"
        super().__init__(message)


class WorkerError(WorkerFailure):
    """An exception raised inside the worker while it served a request; the worker lives on."""

    def __init__(self, type_name: str, message: str, worker_traceback: str):
        self.type_name = type_name
        self.worker_message = message
        self.worker_traceback = worker_traceback
        super().__init__(f"{type_name} in the worker: {message}\n--- worker traceback ---\n"
                         f"{worker_traceback.rstrip()}\n--- end of worker traceback ---")


class WorkerCrashed(WorkerFailure):
    """The worker process died (killed, os._exit, segfault) or could not be started."""


class WorkerTimeout(WorkerFailure):
    """The worker did not answer in time; it has been killed."""


class ProtocolError(WorkerFailure):
    """Bytes that are not a valid frame (garbage on stdout, a refused .npz, bad JSON)."""


# --------------------------------------------------------------------------------------------
# Encoding

def encode_arrays(arrays: dict | None) -> bytes:
    """.npz bytes of ``arrays`` (name -> array); empty bytes for none.  Object arrays (which
    would need pickle) are refused with a ValueError naming the array."""
    if not arrays:
        return b""
    clean = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"arrays: expected non-empty str names, got {name!r}")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise ValueError(f"arrays[{name!r}]: expected a numeric array, got dtype {array.dtype} "
                             f"(object arrays would need pickle, which the protocol never uses)")
        clean[name] = array
    buffer = io.BytesIO()
    np.savez(buffer, **clean)
    return buffer.getvalue()


def decode_arrays(data: bytes) -> dict[str, np.ndarray]:
    """Arrays from .npz bytes, loaded with ``allow_pickle=False``; ProtocolError when the bytes are
    not an .npz or hold a pickled (object) array."""
    if not data:
        return {}
    if not data.startswith(b"PK"):
        raise ProtocolError(f"an .npz payload could not be read: expected a zip archive, got "
                            f"{data[:16]!r}...")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as exc:  # "Object arrays cannot be loaded when allow_pickle=False"
        raise ProtocolError(f"refused an .npz payload: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError ...
        raise ProtocolError(f"an .npz payload could not be read: {type(exc).__name__}: {exc}") from None


def encode_frame(meta: dict, arrays: dict | None = None) -> bytes:
    """One frame: MAGIC, the JSON metadata and the .npz bytes, each length-prefixed."""
    if not isinstance(meta, dict):
        raise ValueError(f"meta: expected a dict (a JSON object), got {type(meta).__name__}")
    body = json.dumps(meta, allow_nan=True).encode("utf-8")
    npz = encode_arrays(arrays)
    return MAGIC + _JSON_LEN.pack(len(body)) + body + _NPZ_LEN.pack(len(npz)) + npz


def decode_frame(read_exact) -> tuple[dict, dict[str, np.ndarray]]:
    """Read one frame with ``read_exact(n) -> bytes`` (which raises on EOF / timeout)."""
    magic = read_exact(len(MAGIC))
    if magic != MAGIC:
        raise ProtocolError(f"expected a frame starting with {MAGIC!r}, got {magic!r} "
                            f"(something other than the protocol was written to the worker's stdout)")
    (json_len,) = _JSON_LEN.unpack(read_exact(_JSON_LEN.size))
    if json_len > MAX_JSON_BYTES:
        raise ProtocolError(f"frame metadata of {json_len} bytes exceeds the limit of {MAX_JSON_BYTES}")
    body = read_exact(json_len)
    try:
        meta = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"frame metadata is not UTF-8 JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ProtocolError(f"frame metadata: expected a JSON object, got {type(meta).__name__}")
    (npz_len,) = _NPZ_LEN.unpack(read_exact(_NPZ_LEN.size))
    if npz_len > MAX_NPZ_BYTES:
        raise ProtocolError(f"frame payload of {npz_len} bytes exceeds the limit of {MAX_NPZ_BYTES}")
    return meta, decode_arrays(read_exact(npz_len))


def read_frame_from(stream) -> tuple[dict, dict[str, np.ndarray]]:
    """Read one frame from a blocking binary stream (used by tests and simple tools)."""

    def read_exact(n):
        data = b""
        while len(data) < n:
            chunk = stream.read(n - len(data))
            if not chunk:
                raise EOFError(f"end of stream after {len(data)} of {n} bytes")
            data += chunk
        return data

    return decode_frame(read_exact)


# --------------------------------------------------------------------------------------------
# The worker process

_LIVE_WORKERS: "weakref.WeakSet[Worker]" = weakref.WeakSet()


@atexit.register
def _kill_all_workers() -> None:
    for worker in list(_LIVE_WORKERS):
        worker.close(graceful=False)


@dataclass
class WorkerConfig:
    """How to start a worker: the command (interpreter and script), extra environment, and the
    time limits.  ``env`` entries are added to the host environment (None removes a variable)."""

    command: list[str]
    env: dict = field(default_factory=dict)
    cwd: str | None = None
    timeout: float = 120.0  # seconds per request
    start_timeout: float = 180.0  # seconds for the hello frame (framework import included)
    name: str = "worker"


class Worker:
    """One persistent worker process, started lazily on the first request and restarted after a
    crash, a timeout or a protocol error.  ``request`` is one round trip."""

    def __init__(self, config: WorkerConfig):
        if not config.command:
            raise ValueError("config.command: expected a non-empty list (interpreter and script), got []")
        self.config = config
        self._proc: subprocess.Popen | None = None
        self._stderr_tail: deque[bytes] = deque()
        self._stderr_size = 0
        self._stderr_lock = threading.Lock()
        self._stderr_thread: threading.Thread | None = None
        self._buffer = b""
        self.hello: dict = {}
        self.starts = 0
        _LIVE_WORKERS.add(self)

    # ---- process management

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> dict:
        """Start the process (if not running) and return its hello metadata."""
        if self.alive():
            return self.hello
        self._discard()
        env = dict(os.environ)
        for key, value in self.config.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        try:
            self._proc = subprocess.Popen(
                self.config.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=env, cwd=self.config.cwd, start_new_session=True,
                bufsize=0)
        except OSError as exc:
            raise WorkerCrashed(f"{self.config.name}: could not start {self.config.command!r}: {exc}") from None
        self.starts += 1
        self._buffer = b""
        with self._stderr_lock:
            self._stderr_tail.clear()
            self._stderr_size = 0
        self._stderr_thread = threading.Thread(target=self._drain_stderr, args=(self._proc,),
                                               name=f"{self.config.name}-stderr", daemon=True)
        self._stderr_thread.start()
        meta, _ = self._receive(self.config.start_timeout, waiting_for="its hello frame (startup)")
        if meta.get("status") != "ok" or meta.get("op") != "hello":
            tail = self.stderr_tail()
            self._discard()
            if meta.get("status") == "error":
                raise WorkerCrashed(f"{self.config.name}: failed at startup: {meta.get('type')}: "
                                    f"{meta.get('message')}\n{meta.get('traceback', '')}", stderr_tail=tail)
            raise ProtocolError(f"{self.config.name}: expected a hello frame at startup, got {meta!r}",
                                stderr_tail=tail)
        self.hello = meta
        return meta

    def _drain_stderr(self, proc: subprocess.Popen) -> None:
        stream = proc.stderr
        while True:
            try:
                chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            with self._stderr_lock:
                self._stderr_tail.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size > STDERR_TAIL_BYTES and len(self._stderr_tail) > 1:
                    self._stderr_size -= len(self._stderr_tail.popleft())

    def stderr_tail(self, wait: float = 0.2) -> str:
        """The last ~16 KiB the worker wrote to stderr (waits briefly for a dying worker's last
        words to be drained)."""
        thread = self._stderr_thread
        if thread is not None and self._proc is not None and self._proc.poll() is not None:
            thread.join(wait)
        with self._stderr_lock:
            data = b"".join(self._stderr_tail)
        return data[-STDERR_TAIL_BYTES:].decode("utf-8", errors="replace")

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        else:
            # The group may hold children that outlived the leader.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _discard(self) -> None:
        """Kill the process (group) and forget it; the next request starts a fresh one."""
        proc = self._proc
        if proc is None:
            return
        self._kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if self._stderr_thread is not None:
            self._stderr_thread.join(1.0)
        try:
            if proc.stderr is not None:
                proc.stderr.close()
        except OSError:
            pass
        self._proc = None
        self._buffer = b""

    def close(self, graceful: bool = True) -> None:
        """Ask the worker to exit (briefly), then kill its process group."""
        proc = self._proc
        if proc is None:
            return
        if graceful and proc.poll() is None:
            try:
                proc.stdin.write(encode_frame({"op": "exit"}))
                proc.stdin.flush()
                proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self._discard()

    def __del__(self):
        try:
            self.close(graceful=False)
        except Exception:
            pass

    # ---- I/O

    def _failure(self, cls, what: str) -> WorkerFailure:
        proc = self._proc
        status = ""
        if proc is not None:
            code = proc.poll()
            if code is not None:
                status = (f" (killed by signal {signal.Signals(-code).name})" if code < 0
                          else f" (exit status {code})")
        tail = self.stderr_tail()
        self._discard()
        return cls(f"{self.config.name}: {what}{status}; the next request starts a fresh worker",
                   stderr_tail=tail)

    def _read_exact(self, n: int, deadline: float, waiting_for: str) -> bytes:
        fd = self._proc.stdout.fileno()
        while len(self._buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._failure(WorkerTimeout, f"no answer within {self._timeout_used:g} s "
                                                   f"while waiting for {waiting_for}: killed")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(fd, max(65536, n - len(self._buffer)))
            except OSError as exc:
                raise self._failure(WorkerCrashed, f"reading its stdout failed: {exc}") from None
            if not chunk:
                # EOF: the process is gone (or closed stdout).  Give it a moment to be reaped.
                try:
                    self._proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
                raise self._failure(WorkerCrashed, f"the worker died while {waiting_for}")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _receive(self, timeout: float, waiting_for: str):
        deadline = time.monotonic() + timeout
        self._timeout_used = timeout
        try:
            return decode_frame(lambda n: self._read_exact(n, deadline, waiting_for))
        except ProtocolError as exc:
            raise self._failure(ProtocolError, f"protocol error while waiting for {waiting_for}: {exc}") from None

    def request(self, meta: dict, arrays: dict | None = None, *,
                timeout: float | None = None) -> tuple[dict, dict[str, np.ndarray]]:
        """Send one request and return the reply (meta, arrays) whose status is "ok" or
        "unsupported".  Raises WorkerError for an exception in the worker, WorkerCrashed,
        WorkerTimeout or ProtocolError for a failure of the worker itself."""
        frame = encode_frame(meta, arrays)
        self.start()
        try:
            self._proc.stdin.write(frame)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise self._failure(WorkerCrashed, f"could not send {meta.get('op')!r}: {exc}") from None
        reply, out = self._receive(self.config.timeout if timeout is None else timeout,
                                   waiting_for=f"the answer to {meta.get('op')!r}")
        status = reply.get("status")
        if status == "error":
            raise WorkerError(str(reply.get("type", "Exception")), str(reply.get("message", "")),
                              str(reply.get("traceback", "")))
        if status not in ("ok", "unsupported"):
            raise self._failure(ProtocolError, f"a reply with an unknown status {status!r}: {reply!r}")
        return reply, out


def split_items(arrays: dict[str, np.ndarray], count: int) -> list[dict[str, np.ndarray]]:
    """Arrays of a batched frame, named "<k>/<name>", split into one dict per item."""
    items: list[dict[str, np.ndarray]] = [{} for _ in range(count)]
    for key, value in arrays.items():
        index, sep, name = key.partition("/")
        if not sep or not index.isdigit() or int(index) >= count:
            raise ProtocolError(f"batched array name: expected '<item>/<name>' with item < {count}, got {key!r}")
        items[int(index)][name] = value
    return items


def join_items(items: list[dict]) -> dict[str, np.ndarray]:
    """Inverse of :func:`split_items`."""
    return {f"{k}/{name}": value for k, arrays in enumerate(items) for name, value in arrays.items()}
