"""The teacher client against a real local HTTP server that injects faults: 429 with Retry-After, 500s,
hangs past the timeout, dropped connections, malformed JSON and empty responses."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import defaultdict

import pytest
from aiohttp import web

from kpod.data.example import Example
from kpod.data.prompts import ANSWER_TRIGGER
from kpod.teacher.client import backoff_delay, parse_retry_after, teach_endpoint
from kpod.teacher.config import TeachConfig

MARKER = re.compile(r"\[(\w+):(\d+)\]")
SUM = re.compile(r"What is (\d+) \+ (\d+)\?")


class FaultServer:
    """An OpenAI-style /v1/completions and /v1/chat/completions server on 127.0.0.1 (its own thread
    and event loop). A question "What is A + B? [kind:K]" gets fault `kind` on its first K stage-1
    requests (every stage-2 request for kinds noanswer and wrong), then the right answer, A + B.
    `delay` is added to every answer."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.seen: dict[tuple[str, int], list[float]] = defaultdict(list)
        self._ready = threading.Event()

    def __enter__(self) -> FaultServer:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "fault server did not start"
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/completions", self._handle)
        app.router.add_post("/v1/chat/completions", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chat = "messages" in body
        text = "\n".join(m["content"] for m in body["messages"]) if chat else body["prompt"]
        stage = 2 if text.rstrip().endswith(ANSWER_TRIGGER) else 1
        question = text.split("\n", 1)[0]
        self.seen[(question, stage)].append(time.monotonic())
        attempt = len(self.seen[(question, stage)])
        marker = MARKER.search(question)
        kind, times = (marker.group(1), int(marker.group(2))) if marker else (None, 0)
        a, b = map(int, SUM.search(question).groups())
        answer = a + b
        if stage == 1 and attempt <= times:
            if kind == "429":
                return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "1"})
            if kind in ("500", "400"):
                return web.json_response({"error": {"message": "no"}}, status=int(kind))
            if kind == "hang":
                await asyncio.sleep(1.5)
            if kind == "drop":
                request.transport.close()
                return web.Response()
            if kind == "malformed":
                return web.Response(text='{"choices": [{"text": "half', content_type="application/json")
            if kind == "empty":
                return web.json_response(_payload("", chat))
            if kind == "weird":
                return web.json_response({"detail": "a 200 that is no completion"})
        await asyncio.sleep(self.delay)
        if stage == 1:
            return web.json_response(_payload(f"We add {a} and {b}. {a} + {b} = {answer}.", chat))
        if kind == "noanswer":
            return web.json_response(_payload(" not sure.", chat))
        return web.json_response(_payload(f" {answer + (kind == 'wrong')}.", chat))


def _payload(text: str, chat: bool) -> dict:
    choice = {"index": 0, "finish_reason": "stop"}
    choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
    return {"id": "x", "object": "chat.completion" if chat else "text_completion", "created": 0, "model": "fake",
            "choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


def question(i: int, marker: str = "") -> Example:
    return Example(id=f"q{i}", question=f"What is {i} + 2? {marker}".strip(), answer=str(i + 2))


def run_records(server: FaultServer, examples: list[Example], **overrides) -> dict[str, dict]:
    settings = dict(dataset="unused", model="fake", endpoint=server.url, request_timeout=0.5, max_retries=3,
                    backoff=0.01, concurrency=8)
    cfg = TeachConfig(**{**settings, **overrides})
    records: list[dict] = []
    asyncio.run(teach_endpoint(cfg, [(ex, 0) for ex in examples], records.append))
    assert len(records) == len(examples)
    return {r["id"]: r for r in records}


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_every_fault_kind_is_retried_or_recorded(api):
    examples = [question(1), question(2, "[429:1]"), question(3, "[500:2]"), question(4, "[hang:1]"),
                question(5, "[drop:1]"), question(6, "[malformed:9]"), question(7, "[empty:9]"),
                question(8, "[500:9]"), question(9, "[noanswer:0]"), question(10, "[400:9]"), question(11, "[wrong:0]"),
                question(12, "[weird:9]")]
    with FaultServer() as server:
        records = run_records(server, examples, api=api)
        # 429 with Retry-After: 1 -> the retry waits a second although the backoff base is 10 ms
        first, second = server.seen[(f"Q: {examples[1].question}", 1)]
        assert second - first >= 0.95
    ok = {"q1": 2, "q2": 3, "q3": 4, "q4": 3, "q5": 3}  # id -> requests made (2 stages + retries)
    for key, attempts in ok.items():
        assert (records[key]["status"], records[key]["correct"], records[key]["attempts"]) == ("ok", True, attempts)
        assert records[key]["rationale"].startswith("We add") and records[key]["answer"] == str(int(key[1:]) + 2)
    assert records["q4"]["latency_s"] >= 0.5  # the hung request was abandoned at the timeout
    failed = {key: (r["reason"], r["attempts"]) for key, r in records.items() if r["status"] == "failed"}
    assert failed == {"q6": ("malformed_response", 1), "q7": ("empty_response", 1), "q8": ("server_error", 4),
                      "q10": ("http_400", 1), "q12": ("malformed_response", 1)}
    assert all(records[k]["rationale"] is None and records[k]["error"] for k in failed)
    assert (records["q9"]["status"], records["q9"]["reason"], records["q9"]["answer"]) == ("ok", "no_answer", None)
    assert (records["q11"]["status"], records["q11"]["answer"], records["q11"]["correct"]) == ("ok", "14", False)
    assert records["q1"]["usage"] == {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}


def test_records_hold_the_two_stage_prompts():
    with FaultServer() as server:
        record = run_records(server, [question(40)])["q40"]
    assert record["prompt"] == "Q: What is 40 + 2?\nA: Let's think step by step."
    assert record["answer_prompt"] == ("Q: What is 40 + 2?\nA: Let's think step by step. We add 40 and 2. "
                                       "40 + 2 = 42.\nTherefore, the answer is")
    assert record["response"] == ["We add 40 and 2. 40 + 2 = 42.", " 42."]


def test_concurrency_is_bounded():
    with FaultServer(delay=0.2) as server:
        start = time.monotonic()
        run_records(server, [question(i) for i in range(8)], concurrency=4)
        elapsed = time.monotonic() - start
    # 8 examples x 2 sequential stages x 0.2 s at 4 in flight: 0.8 s; unbounded would take 0.4 s
    assert 0.75 <= elapsed < 3.0


def test_backoff_delay_doubles_with_jitter_and_honours_retry_after():
    import random

    rng = random.Random(0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (6, 10.0)]:
        delays = [backoff_delay(attempt, base=1.0, cap=10.0, rng=rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not constant
    assert backoff_delay(3, base=1.0, cap=10.0, retry_after=2.5) == 2.5
    assert backoff_delay(0, base=1.0, cap=10.0, retry_after=99) == 10.0


def test_parse_retry_after_forms():
    from email.utils import formatdate

    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    later = parse_retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)})
    assert 28 <= later <= 31
