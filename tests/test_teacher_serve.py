"""`kpod serve` in a separate process with a tiny local model, used through the official openai client
and raw HTTP; the teacher client against it gives the same records as the in-process hf backend."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import openai
import pytest

from kpod.data.example import Example
from kpod.teacher.client import teach_endpoint
from kpod.teacher.config import TeachConfig
from kpod.teacher.hf_backend import teach_local

# starting a server process (torch, transformers) takes 10-40 s on a busy 2-core machine
pytestmark = pytest.mark.slow

PROMPT = "Q: Tom has 12 apples and buys 30 more. How many apples does he have?\nA: Let's think step by step."


@pytest.fixture(scope="module")
def server(tiny_models):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KPOD_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kpod.cli", "serve", "--model", str(tiny_models["causal"]), "--port", "0",
         "--served-model-name", "tiny", "--batch-wait-ms", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    url = None
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if "serving" in line:
            url = line.rsplit(" at ", 1)[1].strip()
    if url is None:
        proc.kill()
        pytest.fail(f"kpod serve did not start: {proc.stdout.read()}")
    assert url.startswith("http://127.0.0.1:")
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_openai_client_against_kpod_serve(server):
    url, _ = server
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    first = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=12, temperature=0)
    again = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=12, temperature=0)
    assert first.choices[0].text == again.choices[0].text  # greedy is deterministic
    assert first.choices[0].finish_reason in ("stop", "length")
    assert first.usage.prompt_tokens > 10 and 0 < first.usage.completion_tokens <= 12
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPT}],
                                          max_tokens=8, temperature=0.9, seed=3, n=2)
    assert len(chat.choices) == 2 and all(isinstance(c.message.content, str) for c in chat.choices)
    assert chat.choices[0].message.role == "assistant"
    # a user turn alone is rendered as its content: the same greedy text as the completion
    greedy_chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPT}],
                                                 max_tokens=12, temperature=0)
    assert greedy_chat.choices[0].message.content == first.choices[0].text


def test_bad_requests_get_openai_style_errors(server):
    url, _ = server
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="other", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.completions.create(model="tiny", prompt="x", max_tokens=2, temperature=5)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="tiny", messages=[], max_tokens=2)

    async def raw():
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/completions", data="{not json") as response:
                return response.status, await response.json()

    status, body = asyncio.run(raw())
    assert status == 400 and "not valid JSON" in body["error"]["message"]


def test_concurrent_requests_share_a_batch_and_match_single_requests(server):
    url, _ = server
    prompts = [PROMPT, "Q: A box holds 6 pens.\nA: Let's think step by step.", "Q: Which is a fruit?\nA:"] * 2

    async def post(session, prompt):
        body = {"model": "tiny", "prompt": prompt, "max_tokens": 10, "temperature": 0}
        async with session.post(f"{url}/completions", json=body) as response:
            return int(response.headers["X-Kpod-Batch-Size"]), (await response.json())["choices"][0]["text"]

    async def together():
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(*(post(session, p) for p in prompts))

    async def one_by_one():
        async with aiohttp.ClientSession() as session:
            return [await post(session, p) for p in prompts[:3]]

    batched = asyncio.run(together())
    single = asyncio.run(one_by_one())
    assert max(size for size, _ in batched) >= 3  # sent within the 100 ms collection window
    assert all(size == 1 for size, _ in single)
    assert [text for _, text in batched] == [text for _, text in single] * 2


def test_teacher_client_against_serve_equals_hf_backend(server, tiny_models):
    url, _ = server
    examples = [Example(id=f"e{i}", question=q, answer="42") for i, q in enumerate(
        ["Tom has 12 apples and buys 30 more. How many apples does he have?", "A box holds 6 pens. How many in 7?",
         "Sara had $150.50 and spent $20. How much is left?"])]
    settings = dict(dataset="unused", model="tiny", max_tokens=16, answer_max_tokens=6, concurrency=3)
    remote: list[dict] = []
    asyncio.run(teach_endpoint(TeachConfig(endpoint=url, **settings), [(ex, 0) for ex in examples], remote.append))
    local: list[dict] = []
    teach_local(TeachConfig(**{**settings, "model": str(tiny_models["causal"]), "backend": "hf", "batch_size": 2}),
                [(ex, 0) for ex in examples], local.append)
    fields = ("id", "status", "reason", "prompt", "response", "rationale", "answer", "correct")
    assert sorted((tuple(r[f] for f in fields) for r in remote), key=str) == \
        sorted((tuple(r[f] for f in fields) for r in local), key=str)
    assert all(r["usage"]["total_tokens"] > 0 for r in remote if r["status"] == "ok")


def test_sigterm_stops_the_server(server):
    _, proc = server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
