"""The child side of the PoT sandbox (see `kpod.kpdd.sandbox`), run as a script: `python -I -S THIS_FILE`.

One-shot: reads one request {"code", "limits"} as JSON on stdin, confines itself (resource limits, a
new network namespace and the `nobody` user when root), runs the already-checked program with
restricted builtins and copies of the allowed modules, and writes one JSON record {"ok", "answer",
"error", "output", "truncated"} to stdout.

Serving (`THIS_FILE --serve LIMITS_JSON`, the pool's workers): loads the modules once, leaves the
network namespace once, then for each request line {"code", "workdir"} forks a child that confines
itself the same way in its own session and cwd, kills the child's group at the deadline, and answers
with the record on one line. Standard library only, so that it starts fast.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from decimal import Decimal
from fractions import Fraction

# Loaded eagerly, before privileges are dropped: later reads of the standard library may be denied to
# the unprivileged user. `_strptime` is what `datetime.strptime` imports lazily.
PRELOAD = ("_strptime",)
SAFE_BUILTINS = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "classmethod", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "int", "isinstance",
    "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "pow", "print",
    "property", "range", "repr", "reversed", "round", "set", "slice", "sorted", "staticmethod", "str", "sum",
    "super", "tuple", "type", "zip", "Ellipsis", "NotImplemented", "__build_class__",
)
NOBODY = 65534
_CLONE_NEWNET = 0x40000000


class _BoundedWriter:
    """sys.stdout for the program: keeps the first `limit` characters and the tail (for the last line)."""

    def __init__(self, limit: int):
        self.limit, self.head, self.tail, self.total = limit, [], "", 0

    def write(self, text: str) -> int:
        text = str(text)
        if self.total < self.limit:
            self.head.append(text[: self.limit - self.total])
        self.total += len(text)
        self.tail = (self.tail + text)[-self.limit:]
        return len(text)

    def flush(self) -> None:
        pass

    def last_line(self) -> str | None:
        lines = [line.strip() for line in self.tail.splitlines() if line.strip()]
        return lines[-1] if lines else None


def _public_copy(module, name: str):
    import types

    copy = types.ModuleType(name)
    for attr in dir(module):
        value = getattr(module, attr)
        if not attr.startswith("_") and not isinstance(value, types.ModuleType):
            setattr(copy, attr, value)
    return copy


def _restricted_builtins(modules: dict) -> dict:
    import builtins

    safe = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    safe.update({name: value for name, value in vars(builtins).items()
                 if isinstance(value, type) and issubclass(value, BaseException)})

    def restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if not level and name in modules:
            return modules[name]
        if not level and name in PRELOAD:  # imported lazily from C, e.g. by datetime.strptime
            return sys.modules[name]
        raise ImportError(f"import of {name!r} is not allowed")

    safe["__import__"] = restricted_import
    return safe


def format_answer(value) -> str:
    """A program's result as answer text: integral numbers without ".0", floats rounded to 6 places."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (Fraction, Decimal)):
        value = float(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        value = round(value, 6)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)[:1000]


def _confine(limits: dict, *, network: bool = True) -> None:
    """Process-level limits of the child, applied before any untrusted code runs. `network=False`
    when the serving process has already left the network namespace (children inherit it)."""
    cpu = int(limits["timeout"]) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = limits["memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["max_file_bytes"], limits["max_file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() == 0:
        if network and limits["isolate_network"]:
            _unshare_network()
        if limits["drop_privileges"]:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))


def _unshare_network() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare(_CLONE_NEWNET)  # best effort: without permission the language-level guard still holds


def _prepare(limits: dict) -> dict:
    """The restricted builtins (with copies of the allowed modules), loaded while files are readable."""
    import importlib

    modules = {name: _public_copy(importlib.import_module(name), name) for name in limits["modules"]}
    for name in PRELOAD:
        importlib.import_module(name)
    return _restricted_builtins(modules)


def _execute(code: str, limits: dict, builtins: dict, out, *, network: bool = True) -> None:
    """Confine this process, run `code` (already checked), write its result record to `out`, exit."""
    writer = _BoundedWriter(limits["max_output"])

    def finish(record: dict) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        record.update(output="".join(writer.head), truncated=writer.total > limits["max_output"])
        out.write(json.dumps(record))
        out.flush()
        os._exit(0)

    def on_alarm(signum, frame):
        finish({"ok": False, "answer": None, "error": "timeout"})

    program_globals = {"__builtins__": builtins, "__name__": "__main__"}
    _confine(limits, network=network)
    sys.stdout = sys.stderr = writer
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limits["timeout"])
    try:
        exec(compile(code, "<program>", "exec"), program_globals)
        if "answer" in program_globals:
            value = program_globals["answer"]
        elif callable(program_globals.get("solution")):
            value = program_globals["solution"]()
        else:
            value = writer.last_line()
        answer = None if value is None else format_answer(value)
    except MemoryError:
        finish({"ok": False, "answer": None, "error": "MemoryError: memory limit exceeded"})
    except BaseException as err:  # SystemExit, RecursionError, anything the program raises
        finish({"ok": False, "answer": None, "error": f"{type(err).__name__}: {str(err)[:200]}"})
    if answer is None:
        finish({"ok": False, "answer": None, "error": "no answer: no `answer` variable, `solution()` or output"})
    finish({"ok": True, "answer": answer, "error": None})


def failure_record(returncode: int | None, raw: str) -> dict:
    """The record of a child that wrote no result: killed by a signal, or crashed."""
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        return {"ok": False, "error": "timeout" if name in ("SIGXCPU", "SIGKILL") else f"killed by {name}"}
    return {"ok": False, "error": f"crashed (exit {returncode}): {raw.strip()[-200:]}"}


def read_record(raw: str, returncode: int | None) -> dict:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError:
        record = None
    return record if isinstance(record, dict) else failure_record(returncode, raw)


# ---------------------------------------------------------------------------------------------------
# Serving: one process forks a confined child per program (no interpreter start-up per program).


def _run_forked(code: str, workdir: str, limits: dict, builtins: dict, max_bytes: int) -> dict:
    import select
    import time

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own session, nothing inherited but the result pipe
        try:
            os.setsid()
            os.chdir(workdir)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, write_end)
            os.closerange(write_end + 1, 65536)
            _execute(code, limits, builtins, os.fdopen(write_end, "w"), network=False)
        finally:
            os._exit(1)
    os.close(write_end)
    deadline = time.monotonic() + limits["timeout"] + 0.5
    chunks, size, timed_out = [], 0, False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
            timed_out = True
            break
        data = os.read(read_end, 65536)
        if not data:
            break
        if size < max_bytes:
            chunks.append(data)
        size += len(data)
    os.close(read_end)
    for kill in (os.killpg, os.kill):  # the child is not reaped yet, so its pid is still its own
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"ok": False, "answer": None, "error": "timeout"}
    return read_record(b"".join(chunks).decode("utf-8", "replace"), -os.WTERMSIG(status)
                       if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


def serve(limits: dict) -> None:
    """Answer one request line {"code", "workdir"} with one result line, until stdin closes."""
    builtins = _prepare(limits)
    if os.geteuid() == 0 and limits["isolate_network"]:
        _unshare_network()
    stdin, stdout = sys.stdin.buffer, sys.stdout
    max_bytes = limits["max_output"] * 8 + 65536
    for line in stdin:
        request = json.loads(line)
        record = _run_forked(request["code"], request["workdir"], limits, builtins, max_bytes)
        stdout.write(json.dumps(record) + "\n")
        stdout.flush()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(json.loads(sys.argv[2]))
        return
    out = sys.stdout
    request = json.loads(sys.stdin.read())
    sys.stdin.close()
    _execute(request["code"], request["limits"], _prepare(request["limits"]), out)


if __name__ == "__main__":
    main()
