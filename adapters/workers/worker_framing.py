"""The framing of the worker processes (adapters/worker_protocol.py speaks the host side): frames
on the worker's own copies of stdin and stdout, the request loop, structured errors.

Shared by every worker script of this folder, which imports it as a sibling module (a script's
folder is first on sys.path).  It uses only the standard library and numpy, and stays valid
Python 3.6 (CNTK 2.7's interpreter): it must never import anything from the project.
"""

import io
import json
import os
import struct
import sys
import traceback

MAGIC = b"LCW1"


class UnsupportedCase(Exception):
    """The framework cannot express this case (reported as unsupported, never a pass)."""


def protocol_streams():
    """The protocol's (input, output) binary streams; fd 1 then points at stderr and fd 0 at
    /dev/null, so nothing the framework prints or reads can touch the protocol."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    return proto_in, proto_out


def read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError("end of input after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def decode_arrays(data):
    import numpy as np
    if not data:
        return {}
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return dict((name, npz[name]) for name in npz.files)


def encode_arrays(arrays):
    import numpy as np
    if not arrays:
        return b""
    clean = {}
    for name, value in arrays.items():
        clean[name] = np.asarray(value)
        if clean[name].dtype.hasobject:  # would be pickled: never
            raise ValueError("array %r: expected a numeric array, got dtype %s" % (name, clean[name].dtype))
    buffer = io.BytesIO()
    np.savez(buffer, **clean)
    return buffer.getvalue()


def read_frame(stream):
    """(meta, arrays); EOFError at the end of input, ValueError for bytes that are not a frame
    (the stream is then out of step), PayloadError for a refused payload (it is in step)."""
    magic = read_exact(stream, 4)
    if magic != MAGIC:
        raise ValueError("expected a frame starting with %r, got %r" % (MAGIC, magic))
    (json_len,) = struct.unpack(">I", read_exact(stream, 4))
    meta = json.loads(read_exact(stream, json_len).decode("utf-8"))
    (npz_len,) = struct.unpack(">Q", read_exact(stream, 8))
    payload = read_exact(stream, npz_len)
    try:
        arrays = decode_arrays(payload)
    except Exception as exc:
        raise PayloadError("refused an .npz payload: %s: %s" % (type(exc).__name__, exc))
    return meta, arrays


class PayloadError(Exception):
    pass


def write_frame(stream, meta, arrays=None):
    body = json.dumps(meta).encode("utf-8")
    npz = encode_arrays(arrays)
    stream.write(MAGIC + struct.pack(">I", len(body)) + body + struct.pack(">Q", len(npz)) + npz)
    stream.flush()


def error_reply(exc):
    return {"status": "error", "type": type(exc).__name__, "message": str(exc),
            "traceback": traceback.format_exc()}


def handle(handlers, meta, arrays):
    """One request -> (reply meta, reply arrays); exceptions become structured replies."""
    op = meta.get("op")
    try:
        if op == "batch":
            replies, out = [], {}
            for k, item in enumerate(meta.get("items", [])):
                prefix = "%d/" % k
                mine = dict((n[len(prefix):], a) for n, a in arrays.items() if n.startswith(prefix))
                reply, reply_arrays = handle(handlers, item, mine)
                replies.append(reply)
                out.update((prefix + n, a) for n, a in (reply_arrays or {}).items())
            return {"status": "ok", "items": replies}, out
        if op not in handlers:
            raise ValueError("op: expected one of %s, got %r" % (sorted(handlers) + ["batch", "exit"], op))
        reply, out = handlers[op](meta, arrays)
        reply.setdefault("status", "ok")
        return reply, out
    except UnsupportedCase as exc:
        return {"status": "unsupported", "message": str(exc)}, {}
    except Exception as exc:
        return error_reply(exc), {}


def op_sleep(meta, arrays):
    """Every worker's "sleep" request: wait ``seconds`` (a real worker's timeout can be tested)."""
    import time
    time.sleep(float(meta.get("seconds", 0)))
    return {}, {}


def serve(handlers, hello):
    """The worker's main loop: a hello frame, then one reply per request until "exit" or EOF.
    ``handlers`` maps op names to ``fn(meta, arrays) -> (reply meta, reply arrays)``; "sleep" is
    added for every worker."""
    handlers = dict({"sleep": op_sleep}, **handlers)
    proto_in, proto_out = protocol_streams()
    try:
        info = hello()
    except Exception as exc:
        write_frame(proto_out, error_reply(exc))
        return 3
    info.update({"status": "ok", "op": "hello", "pid": os.getpid()})
    write_frame(proto_out, info)
    while True:
        try:
            meta, arrays = read_frame(proto_in)
        except EOFError:
            return 0
        except PayloadError as exc:
            write_frame(proto_out, error_reply(exc))
            continue
        except Exception as exc:  # out of step: nothing more can be read reliably
            sys.stderr.write("worker: unreadable request, exiting: %s\n" % exc)
            return 2
        if meta.get("op") == "exit":
            write_frame(proto_out, {"status": "ok", "op": "exit"})
            return 0
        reply, out = handle(handlers, meta, arrays)
        try:
            write_frame(proto_out, reply, out)
        except Exception as exc:  # e.g. an array numpy cannot save: report, stay in step
            write_frame(proto_out, error_reply(exc))
