"""Throughput of the PoT sandbox (programs per second) and the cost of its limits.

Runs the testbed's programs (short arithmetic, as KPDD-PoT writes them) through the two runners:
`run_program` (a fresh interpreter per program) and `SandboxPool` (serving processes that fork a
confined child per program), plus a mix with hostile programs (timeouts, memory bombs, forbidden
imports) to show what they cost.

    python benchmarks/sandbox.py --programs 200 --workers 1 2
writes benchmarks/results/sandbox.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from kpod.data.answers import answers_match
from kpod.data.synth import SynthConfig, generate
from kpod.io import write_json
from kpod.kpdd.sandbox import SandboxLimits, SandboxPool, run_program

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox.json"
HOSTILE = ["while True:\n    pass\n", "x = [0] * (10 ** 10)\n", "import os\nos.fork()\n",
           "answer = ().__class__.__base__.__subclasses__()\n", "def f():\n    return f()\nanswer = f()\n"]


def measure(run, codes: list[str], golds: list[str | None]) -> dict:
    start = time.perf_counter()
    results = run(codes)
    seconds = time.perf_counter() - start
    right = sum(1 for r, g in zip(results, golds) if g is not None and r.ok and answers_match(r.answer, g))
    return {"programs": len(codes), "seconds": round(seconds, 2), "programs_per_second": round(len(codes) / seconds, 1),
            "correct": right, "expected_correct": sum(g is not None for g in golds),
            "errors": sorted({(r.error or "").split(":")[0] for r in results if not r.ok})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=200, help="testbed programs per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--process-programs", type=int, default=40, help="programs for the one-interpreter-each runner")
    parser.add_argument("--timeout", type=float, default=1.0, help="limit of the hostile mix's programs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("KPOD_NO_PROGRESS", "1")

    examples = generate(SynthConfig(train_size=args.programs, dev_size=0, test_size=0, ood_size=0))["train"]
    codes = [ex.kpdd["program"] for ex in examples]
    golds = [ex.answer for ex in examples]
    limits = SandboxLimits(timeout=args.timeout)
    report = {"command": "python benchmarks/sandbox.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg(), "limits": vars(limits) | {
                  "modules": list(limits.modules)}}
    n = args.process_programs
    report["process_per_program"] = measure(lambda cs: [run_program(c, limits) for c in cs], codes[:n], golds[:n])
    for workers in args.workers:
        with SandboxPool(limits, workers) as pool:
            pool.run("answer = 0")  # start the serving processes before timing
            report[f"pool_{workers}_workers"] = measure(pool.map, codes, golds)
            mix = codes[: len(HOSTILE) * 9] + HOSTILE
            report[f"pool_{workers}_workers_with_{len(HOSTILE)}_hostile"] = measure(
                pool.map, mix, golds[: len(HOSTILE) * 9] + [None] * len(HOSTILE))
    report["load_average_at_end"] = os.getloadavg()
    write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
