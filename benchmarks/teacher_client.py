"""Teacher client benchmark (issue 4).

1. Client overhead: a local server (separate process) answers every request after a fixed 50 ms; the
   teacher client sends requests at concurrency 64. The ideal is 64 / 0.05 = 1280 requests/s; the
   ratio measured / ideal is the client's efficiency. Measured three ways: raw aiohttp requests (what
   this machine allows at all), `TeacherClient.request` (openai client + retry wrapper), and whole
   `kpod teach` records (two requests each, parsing, answer checking and record writes).
2. Resume: `kpod teach` killed with SIGKILL at 5 random points, then run to the end; the records must
   equal those of an uninterrupted run (count and content; latency, the one field that measures time,
   excluded).

    python benchmarks/teacher_client.py [--requests 3840] [--examples 400]

Writes benchmarks/results/teacher_client.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kpod.io import write_json

ROOT = Path(__file__).resolve().parents[1]
SUM = re.compile(r"What is (\d+) \+ (\d+)\?")


def serve_fixed(port_file: str, delay: float) -> None:
    """An OpenAI-style /v1/completions server answering every request after `delay` seconds."""
    from aiohttp import web

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(delay)
        match = SUM.search(body["prompt"])
        a, b = map(int, match.groups()) if match else (1, 1)
        answer_stage = body["prompt"].endswith("Therefore, the answer is")
        text = f" {a + b}." if answer_stage else f"We add {a} and {b}. {a} + {b} = {a + b}."
        return web.json_response({"id": "x", "object": "text_completion", "created": 0, "model": "fixed",
                                  "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/completions", completions)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        Path(port_file).write_text(str(site._server.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(main())


class FixedServer:
    def __init__(self, delay: float):
        self.delay = delay

    def __enter__(self) -> str:
        self.port_file = tempfile.mktemp(prefix="kpod-bench-port-")
        # stderr dropped: a client killed by the resume test makes aiohttp log the lost connection
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-fixed", self.port_file, "--delay", str(self.delay)],
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (Path(self.port_file).exists() and Path(self.port_file).read_text()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("fixed-delay server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{Path(self.port_file).read_text()}/v1"

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()
        Path(self.port_file).unlink(missing_ok=True)


def examples(n: int):
    from kpod.data.example import Example

    return [Example(id=f"q{i}", question=f"What is {i} + 2?", answer=str(i + 2)) for i in range(n)]


async def raw_aiohttp(url: str, total: int, concurrency: int) -> tuple[float, float]:
    import aiohttp

    body = {"model": "fixed", "prompt": "Q: What is 1 + 2?\nA: Let's think step by step.", "max_tokens": 64}
    remaining = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker():
            for _ in remaining:
                async with session.post(f"{url}/completions", json=body) as response:
                    await response.json()
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - start), (time.process_time() - cpu) / total


async def client_requests(url: str, total: int, concurrency: int) -> tuple[float, float]:
    from kpod.teacher.client import TeacherClient
    from kpod.teacher.config import TeachConfig

    client = TeacherClient(TeachConfig(dataset="bench", model="fixed", endpoint=url, concurrency=concurrency))
    remaining = iter(range(total))

    async def worker():
        for _ in remaining:
            await client.request("Q: What is 1 + 2?\nA: Let's think step by step.", max_tokens=64, stop=["\nQ:"],
                                 temperature=0.0, seed=None)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate, cpu = total / (time.perf_counter() - start), (time.process_time() - cpu) / total
    await client.close()
    return rate, cpu


def teach_records(url: str, n: int, concurrency: int, out: Path) -> tuple[float, float]:
    from kpod.teacher.client import teach_endpoint
    from kpod.teacher.config import TeachConfig
    from kpod.teacher.records import RecordStore

    cfg = TeachConfig(dataset="bench", model="fixed", endpoint=url, concurrency=concurrency)
    with RecordStore(out) as store:
        start, cpu = time.perf_counter(), time.process_time()
        asyncio.run(teach_endpoint(cfg, [(ex, 0) for ex in examples(n)], store.append))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return 2 * n / elapsed, cpu / (2 * n)  # two requests per record


def measure_overhead(total: int, concurrency: int, delay: float) -> dict:
    ideal = concurrency / delay
    with FixedServer(delay) as url, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(raw_aiohttp(url, concurrency * 4, concurrency))  # warm up the server
        raw = asyncio.run(raw_aiohttp(url, total, concurrency))
        client = asyncio.run(client_requests(url, total, concurrency))
        teach = teach_records(url, total // 2, concurrency, Path(tmp) / "r.jsonl")
    result = {"concurrency": concurrency, "delay_s": delay, "ideal_requests_per_s": ideal, "requests": total}
    for name, (rate, cpu) in (("raw_aiohttp", raw), ("client", client), ("teach", teach)):
        result.update({f"{name}_requests_per_s": rate, f"{name}_ratio": rate / ideal,
                       f"{name}_cpu_ms_per_request": cpu * 1000})
        print(f"{name:>12}: {rate:7.1f} requests/s at concurrency {concurrency} = {rate / ideal:.3f} of the ideal "
              f"{ideal:.0f}/s; {cpu * 1000:.2f} ms of client CPU per request (one core's limit {1 / cpu:.0f}/s)")
    return result


def _teach(url: str, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "kpod.cli", "teach", "--dataset", str(data), "--endpoint", url, "--model", "fixed",
            "--out", str(out), "--concurrency", "8"]


def _comparable(path: Path) -> tuple[int, int, dict]:
    """(valid record lines, unreadable (torn) lines, records by key without the latency field)."""
    valid = torn = 0
    records: dict = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            torn += 1
            continue
        valid += 1
        record.pop("latency_s")
        records[(record["id"], record["sample"])] = record
    return valid, torn, records


def measure_resume(n: int, kills: int, seed: int) -> dict:
    env = {**os.environ, "KPOD_NO_PROGRESS": "1"}
    rng = random.Random(seed)
    with FixedServer(0.005) as url, tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        data.write_text("".join(json.dumps({"id": ex.id, "question": ex.question, "answer": ex.answer}) + "\n"
                                for ex in examples(n)))
        reference, resumed = Path(tmp) / "reference.jsonl", Path(tmp) / "resumed.jsonl"
        subprocess.run(_teach(url, data, reference), env=env, check=True, capture_output=True)
        kill_points = []
        for _ in range(kills):
            lines = resumed.read_text().count("\n") if resumed.exists() else 0
            target = rng.randint(lines + 1, lines + max(2, (n - lines) // 2))
            proc = subprocess.Popen(_teach(url, data, resumed), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            while proc.poll() is None and (not resumed.exists() or resumed.read_text().count("\n") < target):
                time.sleep(rng.uniform(0, 0.003))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kill_points.append(resumed.read_text().count("\n"))
        subprocess.run(_teach(url, data, resumed), env=env, check=True, capture_output=True)
        ref_valid, ref_torn, ref_records = _comparable(reference)
        valid, torn, records = _comparable(resumed)
    identical = ref_records == records and valid == ref_valid == n and not ref_torn
    result = {"examples": n, "kills": kills, "lines_after_each_kill": kill_points,
              "reference_records": ref_valid, "resumed_records": valid, "resumed_torn_lines": torn,
              "all_ok": all(r["status"] == "ok" for r in records.values()), "content_identical": identical}
    print(f"resume: killed at {kill_points} records, then finished: {valid} records ({torn} torn lines skipped) "
          f"vs {ref_valid} uninterrupted; content identical: {identical}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3840)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve-fixed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fixed:
        serve_fixed(args.serve_fixed, args.delay)
        return 0
    result = {"overhead": measure_overhead(args.requests, args.concurrency, args.delay),
              "resume": measure_resume(args.examples, args.kills, args.seed),
              "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}}
    out = ROOT / "benchmarks" / "results" / "teacher_client.json"
    write_json(out, result)
    print(f"wrote {out}")
    return 0 if result["resume"]["content_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
