"""Run one program in the PoT sandbox and print {"ok", "answer", "error", "seconds"} as JSON.

PoT programs come from a model and are untrusted. Each runs in its own confined process, in its own
session, with a fresh temporary directory as cwd: `run_program` starts a fresh interpreter
(`python -I -S`, no environment, no site-packages) per program; `SandboxPool` keeps serving
interpreters that fork a confined child per program (no start-up cost). Layered defences:

1. Language level: the program's syntax tree is checked before it runs. Names beginning with "__"
   (other than `__name__`), attributes beginning with "_", frame and code attributes (`gi_frame`,
   `f_globals`, `tb_frame`, ...), relative imports and imports outside the allow-list are rejected.
   The program sees a reduced set of builtins (no `open`, `eval`, `exec`, `compile`, `getattr`,
   `globals`, `input`, ...) and an `__import__` that hands out copies of the allowed modules holding
   only their public, non-module attributes (so `re.enum.sys` cannot lead to `os`).
2. Process level, set before the program runs: RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE,
   RLIMIT_NOFILE, RLIMIT_CORE 0 and RLIMIT_NPROC 0; as root the child also moves to a new network
   namespace (only a loopback that is down: no network) and drops to the `nobody` user, under which
   RLIMIT_NPROC holds and nothing outside the temporary directory is writable. An alarm at the
   limit ends the program even when it catches exceptions.
3. Caller level: a wall-clock deadline (the limit plus a small grace), after which the process group
   is killed; output is bounded (RLIMIT_FSIZE, bounded reads).

The result is the variable `answer`, else the value of `solution()`, else the last printed line.

The child side lives in `kpod.kpdd.sandbox_child`, run as a script so that it starts fast.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from kpod.kpdd.sandbox_child import NOBODY, read_record

DEFAULT_MODULES = ("math", "fractions", "decimal", "statistics", "itertools", "functools", "collections", "re",
                   "datetime")
_FORBIDDEN_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "cr_origin", "ag_frame", "ag_code",
    "ag_await", "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "tb_frame", "tb_next",
    "co_code", "func_globals", "func_code", "mro",
})
_ALLOWED_DUNDER_NAMES = frozenset({"__name__"})


@dataclass
class SandboxLimits:
    """Limits of one sandboxed run."""

    timeout: float = 2.0  # wall-clock seconds for the program itself
    memory_mb: int = 256  # RLIMIT_AS of the child process
    max_output: int = 4096  # characters of printed output kept (head); the last line is always kept
    max_file_bytes: int = 1 << 20  # RLIMIT_FSIZE
    grace: float = 1.0  # extra wall-clock seconds for interpreter start-up before the caller kills it
    modules: tuple[str, ...] = DEFAULT_MODULES
    isolate_network: bool = True  # new network namespace when permitted (root)
    drop_privileges: bool = True  # run as `nobody` when started as root


@dataclass
class SandboxResult:
    ok: bool
    answer: str | None
    error: str | None
    seconds: float
    output: str = ""  # printed output, truncated
    truncated: bool = False

    def to_json(self) -> dict:
        """The contract of `kpod sandbox run`: exactly ok, answer, error, seconds."""
        return {"ok": self.ok, "answer": self.answer, "error": self.error, "seconds": round(self.seconds, 4)}


# ---------------------------------------------------------------------------------------------------
# Language-level checks, done by the caller before any process starts.


def check_program(code: str, modules: tuple[str, ...] = DEFAULT_MODULES, max_chars: int = 100_000) -> str | None:
    """The reason `code` may not run (too long, a syntax error, a forbidden construct), or None."""
    if len(code) > max_chars:
        return f"forbidden: program longer than {max_chars} characters"
    try:
        tree = ast.parse(code, mode="exec")
    except (SyntaxError, ValueError) as err:
        return f"SyntaxError: {getattr(err, 'msg', err)}"
    except (RecursionError, MemoryError):
        return "SyntaxError: program nested too deeply"
    for node in ast.walk(tree):
        reason = _forbidden(node, modules)
        if reason:
            return f"forbidden: {reason}"
    return None


def _forbidden(node: ast.AST, modules: tuple[str, ...]) -> str | None:
    if isinstance(node, ast.Attribute) and (node.attr.startswith("_") or node.attr in _FORBIDDEN_ATTRIBUTES):
        return f"attribute {node.attr}"
    if isinstance(node, ast.Name) and node.id.startswith("__") and node.id not in _ALLOWED_DUNDER_NAMES:
        return f"name {node.id}"
    if isinstance(node, (ast.Global, ast.Nonlocal)) and any(n.startswith("__") for n in node.names):
        return "dunder declaration"
    if isinstance(node, ast.MatchClass) and any(a.startswith("_") or a in _FORBIDDEN_ATTRIBUTES
                                                for a in node.kwd_attrs):
        return "attribute pattern"
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in modules:
                return f"import {alias.name}"
    if isinstance(node, ast.ImportFrom):
        if node.level or node.module not in modules:
            return f"import {'.' * node.level}{node.module or ''}"
        if any(alias.name.startswith("_") for alias in node.names):
            return "private import"
    return None


# ---------------------------------------------------------------------------------------------------
# The caller.


CHILD = Path(__file__).with_name("sandbox_child.py").resolve()
CHILD_ENV = {"LC_ALL": "C.UTF-8"}


def _limits_json(limits: SandboxLimits) -> dict:
    return {**asdict(limits), "modules": list(limits.modules)}


def _result(record: dict, start: float) -> SandboxResult:
    return SandboxResult(bool(record.get("ok")), record.get("answer"), record.get("error"),
                         time.perf_counter() - start, record.get("output", ""), bool(record.get("truncated")))


@contextmanager
def _workdir(limits: SandboxLimits):
    """A fresh temporary directory for one program, owned by `nobody` when the child will be."""
    path = Path(tempfile.mkdtemp(prefix="kpod-sandbox-"))
    try:
        if os.geteuid() == 0 and limits.drop_privileges:
            os.chown(path, NOBODY, NOBODY)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_program(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run one program in a fresh confined interpreter; never raises for anything the program does."""
    limits = limits or SandboxLimits()
    start = time.perf_counter()
    reason = check_program(code, tuple(limits.modules))
    if reason:
        return SandboxResult(False, None, reason, time.perf_counter() - start)
    with _workdir(limits) as workdir:
        return _result(_spawn(code, limits, workdir), start)


def _spawn(code: str, limits: SandboxLimits, workdir: Path) -> dict:
    request = json.dumps({"code": code, "limits": _limits_json(limits)})
    with tempfile.TemporaryFile(dir=workdir) as result_file:
        proc = subprocess.Popen([sys.executable, "-I", "-S", str(CHILD)], cwd=workdir, env=CHILD_ENV,
                                stdin=subprocess.PIPE, stdout=result_file, stderr=result_file,
                                start_new_session=True, close_fds=True)
        try:
            proc.communicate(request.encode(), timeout=limits.timeout + limits.grace)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return {"ok": False, "error": "timeout"}
        except BaseException:
            _kill_group(proc)
            raise
        result_file.seek(0)
        raw = result_file.read(limits.max_output * 8 + 65536).decode("utf-8", "replace")
    return read_record(raw, proc.returncode)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child's whole session (anything it started), then reap the child. Only called before
    the child is reaped, so its pid (the group id) cannot have been reused."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class _Server:
    """One serving process (`sandbox_child.py --serve`): forks a confined child per program. If it
    does not answer in time it is killed with everything it started, and restarted on next use."""

    def __init__(self, limits: SandboxLimits):
        self.limits = limits
        self.proc: subprocess.Popen | None = None
        self.buffer = b""

    def _start(self) -> subprocess.Popen:
        home = tempfile.gettempdir()
        return subprocess.Popen([sys.executable, "-I", "-S", str(CHILD), "--serve",
                                 json.dumps(_limits_json(self.limits))], cwd=home, env=CHILD_ENV,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)

    def run(self, code: str, workdir: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.proc = self._start()
        deadline = time.monotonic() + self.limits.timeout + self.limits.grace + 1.0
        try:
            self.proc.stdin.write((json.dumps({"code": code, "workdir": str(workdir)}) + "\n").encode())
            self.proc.stdin.flush()
            line = self._read_line(deadline)
        except (BrokenPipeError, OSError):
            line = None
        if line is None:
            self.close()
            return {"ok": False, "error": "timeout"}
        return read_record(line.decode("utf-8", "replace"), None)

    def _read_line(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            data = os.read(fd, 65536)
            if not data:
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                _kill_group(self.proc)
            else:
                self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                stream.close()
        self.proc, self.buffer = None, b""


class SandboxPool:
    """`workers` serving processes that run programs concurrently, each in a forked confined child
    (the same confinement as `run_program` without an interpreter start-up per program).

        with SandboxPool(limits, workers=2) as pool:
            results = pool.map(programs)
    """

    def __init__(self, limits: SandboxLimits | None = None, workers: int = 2):
        self.limits = limits or SandboxLimits()
        self.servers: queue.Queue[_Server] = queue.Queue()
        self.all = [_Server(self.limits) for _ in range(max(1, workers))]
        for server in self.all:
            self.servers.put(server)

    def run(self, code: str) -> SandboxResult:
        start = time.perf_counter()
        reason = check_program(code, tuple(self.limits.modules))
        if reason:
            return SandboxResult(False, None, reason, time.perf_counter() - start)
        server = self.servers.get()
        try:
            with _workdir(self.limits) as workdir:
                return _result(server.run(code, workdir), start)
        finally:
            self.servers.put(server)

    def map(self, codes: list[str], desc: str | None = None) -> list[SandboxResult]:
        """Results in input order, with a progress bar."""
        from kpod.progress import progress

        with ThreadPoolExecutor(len(self.all)) as executor, progress(total=len(codes), desc=desc or "sandbox",
                                                                     unit="prog") as bar:
            results = []
            for result in executor.map(self.run, codes):
                results.append(result)
                bar.update(1)
            return results

    def close(self) -> None:
        for server in self.all:
            server.close()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_programs(codes: list[str], limits: SandboxLimits | None = None, workers: int = 2,
                 desc: str | None = None) -> list[SandboxResult]:
    """Run many programs through a `SandboxPool` of `workers` processes, results in input order."""
    with SandboxPool(limits, workers) as pool:
        return pool.map(codes, desc)


# ---------------------------------------------------------------------------------------------------
# `kpod sandbox run FILE [--timeout S]`


def add_arguments(parser) -> None:
    parser.add_argument("file", help="Python program to run")
    parser.add_argument("--timeout", type=float, default=SandboxLimits.timeout, help="wall-clock seconds (default 2)")
    parser.add_argument("--memory-mb", type=int, default=SandboxLimits.memory_mb, help="memory limit (default 256)")


def main(args) -> int:
    from kpod.errors import DataError

    path = Path(args.file)
    try:
        code = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read program: {err}", path=path) from None
    result = run_program(code, SandboxLimits(timeout=args.timeout, memory_mb=args.memory_mb))
    print(json.dumps(result.to_json()))
    return 0

