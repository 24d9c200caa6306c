"""The PoT sandbox: hostile programs are contained, normal programs get their answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from kpod.kpdd.sandbox import SandboxLimits, SandboxPool, check_program, run_program, run_programs

LIMITS = SandboxLimits(timeout=0.5, memory_mb=200, max_output=1000, grace=1.0)
# Wall-clock bound on any run: the limit, the grace, and slack for a busy 2-core machine.
BOUND = LIMITS.timeout + LIMITS.grace + 3.0

CANARY_TEXT = "canary: must stay unchanged\n"


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(LIMITS, workers=1) as sandbox_pool:
        yield sandbox_pool


@pytest.fixture(params=["process", "pool"])
def runner(request, pool):
    """Both ways a program runs: a fresh interpreter (`run_program`) and a pool's forked child."""
    return (lambda code: run_program(code, LIMITS)) if request.param == "process" else pool.run


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "canary.txt"
    path.write_text(CANARY_TEXT)
    os.chmod(path, 0o666)
    os.chmod(tmp_path, 0o777)  # even a world-writable directory must stay untouched
    return path


# (name, program) - {canary} is replaced by the canary file's path, {dir} by its directory.
HOSTILE = [
    ("infinite loop", "while True:\n    pass\n"),
    ("loop that swallows the timeout", "while True:\n    try:\n        while True:\n            pass\n"
                                       "    except BaseException:\n        pass\n"),
    ("huge integer in C", "x = 10 ** 10 ** 9\nanswer = 1\n"),
    ("memory bomb at once", "x = [0] * (10 ** 10)\nanswer = 1\n"),
    ("growing memory bomb", "a = []\nwhile True:\n    a.append('x' * 10 ** 6)\n"),
    ("endless output", "while True:\n    print('x' * 1000)\n"),
    ("recursion bomb", "def f(n):\n    return f(n + 1)\nanswer = f(0)\n"),
    ("decimal precision bomb", "import decimal\ndecimal.getcontext().prec = 10 ** 9\n"
                               "answer = decimal.Decimal(1) / decimal.Decimal(7)\n"),
    ("fork bomb", "import os\nwhile True:\n    os.fork()\n"),
    ("subprocess", "import subprocess\nsubprocess.run(['rm', '-f', '{canary}'])\n"),
    ("ctypes", "import ctypes\nctypes.CDLL(None).system(b'rm -f {canary}')\n"),
    ("socket", "import socket\nsocket.create_connection(('127.0.0.1', 22))\n"),
    ("open for writing", "open('{canary}', 'w').write('pwned')\nanswer = 1\n"),
    ("delete with os", "import os\nos.remove('{canary}')\n"),
    ("shutil rmtree", "import shutil\nshutil.rmtree('{dir}')\n"),
    ("pathlib write", "from pathlib import Path\nPath('{canary}').write_text('pwned')\n"),
    ("read environment", "import os\nanswer = os.environ.get('KPOD_SANDBOX_SECRET')\n"),
    ("__import__", "answer = __import__('os').getcwd()\n"),
    ("__builtins__", "answer = __builtins__['open']('{canary}', 'w')\n"),
    ("object subclasses", "p = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]\n"
                          "p(['rm', '{canary}'])\n"),
    ("mro subclasses", "answer = type(()).mro()[-1]\n"),
    ("generator frame", "def g():\n    yield 1\nx = g()\nanswer = x.gi_frame.f_globals\n"),
    ("traceback frame", "try:\n    1 / 0\nexcept Exception as e:\n    answer = e.__traceback__.tb_frame\n"),
    ("function globals", "def f():\n    pass\nanswer = f.__globals__\n"),
    ("getattr with a built string", "answer = getattr((), '__cl' + 'ass__')\n"),
    ("eval", "answer = eval(\"__imp\" + \"ort__('os')\")\n"),
    ("exec", "exec('import os')\n"),
    ("compile", "answer = compile('1', 'x', 'eval')\n"),
    ("globals", "answer = globals()['__builtins__']\n"),
    ("open builtin", "answer = open('{canary}').read()\n"),
    ("f-string dunder", "answer = f'{().__class__.__base__}'\n"),
    ("match class attribute", "match 1:\n    case int(__class__=c):\n        answer = c\n"),
    ("module internals", "import re\nanswer = re.enum\n"),
    ("private import", "from collections import _sys\n"),
    ("relative import", "from . import sandbox\n"),
    ("importlib", "import importlib\nimportlib.import_module('os')\n"),
    ("builtins module", "import builtins\nbuiltins.open('{canary}', 'w')\n"),
    ("sys.exit", "raise SystemExit(0)\n"),
    ("exit builtin", "exit(0)\n"),
    ("parser bomb", "x = " + "-" * 200_000 + "1\n"),
    ("program too long", "x = 1\n" * 50_000),
]


@pytest.mark.parametrize("name,program", HOSTILE, ids=[name for name, _ in HOSTILE])
def test_hostile_program_is_contained(name, program, canary, monkeypatch, runner):
    monkeypatch.setenv("KPOD_SANDBOX_SECRET", "s3cret")
    environment = dict(os.environ)
    before = sorted(p.name for p in canary.parent.iterdir())
    code = program.replace("{canary}", str(canary)).replace("{dir}", str(canary.parent))
    start = time.perf_counter()
    result = runner(code)
    elapsed = time.perf_counter() - start
    assert elapsed < BOUND, f"{name} ran {elapsed:.1f}s"
    assert not result.ok, f"{name} was not stopped: {result}"
    assert result.error
    assert result.answer is None
    assert canary.read_text() == CANARY_TEXT
    assert sorted(p.name for p in canary.parent.iterdir()) == before
    assert dict(os.environ) == environment
    assert len(result.output) <= LIMITS.max_output


def test_hostile_suite_is_large_enough():
    assert len(HOSTILE) >= 25


@pytest.mark.parametrize("code,reason", [
    ("import os", "forbidden: import os"),
    ("x = ().__class__", "forbidden: attribute __class__"),
    ("x = __import__", "forbidden: name __import__"),
    ("def g():\n    yield 1\ny = g().gi_frame", "forbidden: attribute gi_frame"),
    ("from math import _x", "forbidden: private import"),
    ("x = (", "SyntaxError"),
])
def test_check_program_names_the_reason(code, reason):
    assert check_program(code).startswith(reason)


def test_check_program_allows_ordinary_code():
    code = ("from fractions import Fraction\nimport math\nclass A:\n    def f(self):\n        return 1\n"
            "if __name__ == '__main__':\n    answer = math.floor(Fraction(7, 2)) + A().f()\n")
    assert check_program(code) is None


def test_timeout_and_memory_errors_are_named():
    assert run_program("while True:\n    pass\n", LIMITS).error == "timeout"
    assert run_program("x = [0] * (10 ** 10)\n", LIMITS).error.startswith("MemoryError")


def test_huge_output_is_truncated_but_last_line_read():
    result = run_program("print('y' * 10 ** 6)\nprint(42)\n", LIMITS)
    assert result.ok and result.answer == "42"
    assert result.truncated and len(result.output) == LIMITS.max_output


# Defence in depth: programs that the language-level check would reject, sent straight to the child
# process (bypassing the check) as if they had found a way past it, still meet the process limits.
ESCAPE = ("g = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
          ".__init__.__globals__\n")


@pytest.fixture
def protected_canary(tmp_path):
    directory = tmp_path / "protected"
    directory.mkdir(mode=0o755)
    path = directory / "canary.txt"
    path.write_text(CANARY_TEXT)
    os.chmod(path, 0o644)
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="the process layer drops privileges only when started as root")
@pytest.mark.parametrize("name,code,check", [
    ("runs as nobody", "answer = g['getuid']()", lambda r: r["answer"] == "65534"),
    ("empty environment", "answer = g['environ'].get('KPOD_SANDBOX_SECRET', 'absent')",
     lambda r: r["answer"] == "absent"),
    ("no fork", "answer = g['fork']()", lambda r: not r["ok"] and r["error"].startswith("BlockingIOError")),
    ("no write outside", "answer = g['open']('{canary}', g['O_WRONLY'] | g['O_TRUNC'])",
     lambda r: not r["ok"] and r["error"].startswith("PermissionError")),
    ("no network interfaces but loopback",
     "fd = g['open']('/proc/self/net/dev', 0)\nanswer = g['read'](fd, 65536).decode().count(':')",
     lambda r: r["answer"] == "1"),
])
@pytest.mark.parametrize("how", ["process", "pool"])
def test_process_layer_holds_without_the_language_check(name, code, check, how, protected_canary, tmp_path,
                                                         monkeypatch):
    from kpod.kpdd.sandbox import _Server, _spawn

    monkeypatch.setenv("KPOD_SANDBOX_SECRET", "s3cret")
    workdir = tmp_path / "work"
    workdir.mkdir()
    os.chown(workdir, 65534, 65534)
    code = ESCAPE + code.replace("{canary}", str(protected_canary))
    if how == "process":
        record = _spawn(code, LIMITS, workdir)
    else:
        server = _Server(LIMITS)
        try:
            record = server.run(code, workdir)
        finally:
            server.close()
    assert check(record), f"{name}: {record}"
    assert protected_canary.read_text() == CANARY_TEXT


NORMAL = [
    ("answer = 48 / 2 + 48\n", "72"),
    ("def solution():\n    return 3.50\n", "3.5"),
    ("x = 12\ny = 30\nprint(x + y)\n", "42"),
    ("from fractions import Fraction\nanswer = Fraction(1, 3) + Fraction(1, 6)\n", "0.5"),
    ("from decimal import Decimal\nanswer = Decimal('1.10') + Decimal('2.20')\n", "3.3"),
    ("import statistics\nanswer = statistics.mean([1, 2, 6])\n", "3"),
    ("import math\nanswer = math.comb(5, 2) * math.factorial(3)\n", "60"),
    ("import datetime\nd = datetime.datetime.strptime('2020-03-01', '%Y-%m-%d') - datetime.datetime(2020, 2, 1)\n"
     "answer = d.days\n", "29"),
    ("from collections import Counter\nanswer = Counter('banana')['a']\n", "3"),
    ("import itertools, functools\nanswer = functools.reduce(lambda a, b: a * b, itertools.repeat(2, 10))\n", "1024"),
    ("import re\nanswer = len(re.findall(r'\\d+', 'a1 b22 c333'))\n", "3"),
    ("class Box:\n    def __init__(self, n):\n        self.n = n\nanswer = sum(Box(i).n for i in range(5))\n", "10"),
    ("if __name__ == '__main__':\n    answer = 7 // 2\n", "3"),
    ("answer = 2 / 3\n", "0.666667"),
    ("print(5)\nanswer = 6\n", "6"),  # `answer` wins over printed output
    ("def solution():\n    return 7\nprint(8)\n", "7"),  # so does `solution()`
]


@pytest.mark.parametrize("code,expected", NORMAL)
def test_normal_programs_get_correct_answers(code, expected, runner):
    result = runner(code)
    assert result.ok, result.error
    assert result.answer == expected


def test_program_without_result_is_an_error():
    result = run_program("x = 1\n", LIMITS)
    assert not result.ok and result.error.startswith("no answer")


def test_run_programs_keeps_input_order():
    codes = [f"answer = {i} * 2" for i in range(6)] + ["while True:\n    pass\n", "answer = 'done'"]
    results = run_programs(codes, LIMITS, workers=3)
    assert [r.answer for r in results] == [str(i * 2) for i in range(6)] + [None, "done"]
    assert results[6].error == "timeout"


def test_pool_recovers_after_its_server_is_killed(pool):
    assert pool.run("answer = 1").answer == "1"
    server = pool.all[0]
    os.killpg(server.proc.pid, 9)
    server.proc.wait()
    assert pool.run("answer = 2").answer == "2"


def test_cli_prints_one_json_object_and_exits_zero(tmp_path):
    program = tmp_path / "loop.py"
    program.write_text("while True:\n    pass\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kpod.cli", "sandbox", "run", str(program), "--timeout", "0.5"],
                          capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - start < 30
    assert proc.returncode == 0
    record = json.loads(proc.stdout)
    assert set(record) == {"ok", "answer", "error", "seconds"}
    assert record["ok"] is False and record["error"] == "timeout"
    assert record["seconds"] < 0.5 + SandboxLimits.grace + 1.0

    program.write_text("answer = 6 * 7\n")
    proc = subprocess.run([sys.executable, "-m", "kpod.cli", "sandbox", "run", str(program)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["answer"] == "42"
