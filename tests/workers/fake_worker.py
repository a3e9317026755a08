"""A worker without a framework, for the protocol tests: the framing and request handling every
real worker script uses (adapters/workers/worker_framing.py, imported the way a worker script
named by argv[1] imports it: cntk_worker or tf1_worker) plus ops that misbehave on purpose
(raise, die, hang, write garbage, answer with a pickle)."""

import importlib.util
import io
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, os.pardir, os.pardir, "adapters", "workers")


def load(name):
    if WORKERS not in sys.path:  # as for a worker run as a script: its folder first on sys.path
        sys.path.insert(0, WORKERS)
    spec = importlib.util.spec_from_file_location(name, os.path.join(WORKERS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = load(sys.argv[1] if len(sys.argv) > 1 else "cntk_worker")
real = sys.modules["worker_framing"]  # the module the script's own serve() comes from
assert script.serve is real.serve and script.UnsupportedCase is real.UnsupportedCase
import numpy as np  # noqa: E402

PROTO = {}


def op_echo(meta, arrays):
    return {"echo": meta.get("payload"), "names": sorted(arrays)}, dict(arrays)


def op_raise(meta, arrays):
    raise ValueError("the worker raised on purpose: " + str(meta.get("why")))


def op_unsupported(meta, arrays):
    raise real.UnsupportedCase("not expressible here")


def op_die(meta, arrays):
    sys.stderr.write("about to die with os._exit(%d)\n" % meta.get("code", 3))
    sys.stderr.flush()
    os._exit(int(meta.get("code", 3)))


def op_kill(meta, arrays):
    sys.stderr.write("about to be killed by SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def op_segfault(meta, arrays):
    sys.stderr.write("about to segfault\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGSEGV)


def op_hang(meta, arrays):
    sys.stderr.write("hanging now\n")
    sys.stderr.flush()
    time.sleep(3600)
    return {}, {}


def op_garbage(meta, arrays):
    PROTO["out"].write(b"Selected CPU as the process wide default device.\n")
    PROTO["out"].flush()
    return {}, {}


def op_chatter(meta, arrays):
    print("chatter on sys.stdout")
    os.write(1, b"chatter on file descriptor 1\n")
    return {"chatted": True}, {}


def op_pickle(meta, arrays):
    buffer = io.BytesIO()
    np.savez(buffer, bad=np.array([{"a": 1}], dtype=object))
    PROTO["raw_npz"] = buffer.getvalue()
    return {}, {}


def op_spawn(meta, arrays):
    child = subprocess.Popen(["sleep", "600"])
    return {"child": child.pid}, {}


def op_pid(meta, arrays):
    return {"pid": os.getpid()}, {}


HANDLERS = {"echo": op_echo, "raise": op_raise, "unsupported": op_unsupported, "die": op_die,
            "kill": op_kill, "segfault": op_segfault, "hang": op_hang, "garbage": op_garbage,
            "chatter": op_chatter, "pickle": op_pickle, "spawn": op_spawn, "pid": op_pid}


def main():
    if os.environ.get("FAKE_WORKER_FAIL_AT_START"):
        sys.stderr.write("cannot start: no framework here\n")
        return 4
    proto_in, proto_out = real.protocol_streams()
    PROTO["out"] = proto_out
    real.write_frame(proto_out, {"status": "ok", "op": "hello", "version": "0.fake", "pid": os.getpid()})
    while True:
        try:
            meta, arrays = real.read_frame(proto_in)
        except EOFError:
            return 0
        except real.PayloadError as exc:
            real.write_frame(proto_out, real.error_reply(exc))
            continue
        if meta.get("op") == "exit":
            return 0
        reply, out = real.handle(HANDLERS, meta, arrays)
        if "raw_npz" in PROTO:  # answer with a pickled payload, bypassing the encoder
            import json
            import struct
            body = json.dumps(reply).encode()
            npz = PROTO.pop("raw_npz")
            proto_out.write(real.MAGIC + struct.pack(">I", len(body)) + body + struct.pack(">Q", len(npz)) + npz)
            proto_out.flush()
            continue
        real.write_frame(proto_out, reply, out)


if __name__ == "__main__":
    sys.exit(main())
