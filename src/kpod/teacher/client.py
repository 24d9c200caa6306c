"""Asynchronous teacher requests to any OpenAI-compatible endpoint (vLLM, SGLang, Ollama, a hosted
API) with the official `openai` client.

Each (example, sample) takes two requests, the two stages of `kpod.teacher.prompts`. Requests that
fail with 429, 408, 5xx, a timeout or a dropped connection are retried with exponential backoff and
jitter (a Retry-After header, when sent, sets the delay); other 4xx errors, malformed and empty
responses are not retried: the (example, sample) gets a "failed" record naming the reason and the
next run retries it.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import openai

try:  # the HTTP library under the openai client: its own fork from openai 3, httpx before
    import httpx2 as httpx
except ImportError:
    import httpx

from kpod.data.example import Example
from kpod.teacher.config import TeachConfig
from kpod.teacher.prompts import (ANSWER_STOP, RATIONALE_STOP, answer_prompt, chat_messages, clean_rationale,
                                  rationale_prompt)
from kpod.teacher.records import FAILED, finished_record


@dataclass
class Completion:
    """The text of one response and its token usage."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    attempts: int = 1


class RequestFailed(Exception):
    """A request that failed for good; `reason` is a short category recorded in the failed record."""

    def __init__(self, reason: str, detail: str, attempts: int):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.attempts = reason, detail, attempts


def backoff_delay(attempt: int, *, base: float, cap: float, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry `attempt` (0-based): the server's Retry-After when given (capped
    at `cap`), else exponential backoff with "equal jitter", uniform in [d/2, d] for
    d = min(cap, base * 2**attempt)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    ceiling = min(cap, base * 2 ** attempt)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def parse_retry_after(headers) -> float | None:
    """Seconds from a `retry-after-ms` or `retry-after` header (seconds or an HTTP date), else None."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        date = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return None if date is None else date.timestamp() - time.time()


def classify(error: Exception) -> tuple[str, bool, float | None]:
    """(reason, retryable, retry-after seconds) of an exception raised by the openai client."""
    if isinstance(error, openai.APITimeoutError):
        return "timeout", True, None
    if isinstance(error, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        retry_after = parse_retry_after(error.response.headers)
        if status == 429:
            return "rate_limited", True, retry_after
        if status >= 500 or status == 408:
            return "server_error" if status >= 500 else "timeout", True, retry_after
        return f"http_{status}", False, None
    return "malformed_response", False, None


class TeacherClient:
    """Sends the two-stage zero-shot CoT requests of one (example, sample) with retries."""

    def __init__(self, cfg: TeachConfig, *, rng: random.Random | None = None):
        self.cfg = cfg
        self.rng = rng or random.Random()
        self.client = openai.AsyncOpenAI(
            base_url=cfg.endpoint, api_key=os.environ.get(cfg.api_key_env) or "EMPTY",
            timeout=cfg.request_timeout, max_retries=0,
            # the openai client's own transport, with a connection pool as large as the concurrency
            http_client=openai.DefaultAioHttpClient(limits=_limits(cfg.concurrency), timeout=cfg.request_timeout),
        )

    async def close(self) -> None:
        await self.client.close()

    async def request(self, prompt: str, *, rationale: str | None = None, max_tokens: int, stop: list[str],
                      temperature: float, seed: int | None) -> Completion:
        """One completion (chat or text) with retries; raises RequestFailed."""
        attempt = 0
        while True:
            try:
                completion = await self._create(prompt, rationale, max_tokens, stop, temperature, seed)
                completion.attempts = attempt + 1
                return completion
            except RequestFailed as err:
                err.attempts = attempt + 1
                raise
            except Exception as err:  # noqa: BLE001 - every client error becomes a reason
                reason, retryable, retry_after = classify(err)
                if not retryable or attempt == self.cfg.max_retries:
                    raise RequestFailed(reason, f"{type(err).__name__}: {err}", attempt + 1) from None
                await asyncio.sleep(backoff_delay(attempt, base=self.cfg.backoff, cap=self.cfg.max_backoff,
                                                  retry_after=retry_after, rng=self.rng))
                attempt += 1

    async def _create(self, prompt, rationale, max_tokens, stop, temperature, seed) -> Completion:
        body = {"model": self.cfg.model, "max_tokens": max_tokens, "temperature": temperature, "top_p": self.cfg.top_p,
                "stop": stop}
        if seed is not None:
            body["seed"] = seed
        chat = self.cfg.api == "chat"
        if chat:
            body["messages"] = chat_messages(prompt, rationale)
        else:
            body["prompt"] = prompt if rationale is None else answer_prompt(prompt, rationale)
        # The client's generic post (same transport, auth and error classes as completions.create) with
        # the JSON read as is: the typed create() spends about 1 ms of CPU per request transforming
        # parameters and building response models, which caps one process well below 1000 requests/s.
        response = await self.client.post("/chat/completions" if chat else "/completions", body=body, cast_to=object)
        return _read_response(response, chat=chat)

    async def teach(self, example: Example, sample: int) -> dict:
        """The record of one (example, sample): both stages, or the reason they failed."""
        prompt = rationale_prompt(example)
        seed = self.cfg.seed + sample if self.cfg.temperature > 0 else None
        start = time.perf_counter()
        calls: list[Completion] = []
        try:
            calls.append(await self.request(prompt, max_tokens=self.cfg.max_tokens, stop=RATIONALE_STOP,
                                            temperature=self.cfg.temperature, seed=seed))
            rationale = clean_rationale(calls[0].text)
            if not rationale:
                raise RequestFailed("empty_response", "no rationale in the response", attempts=0)
            # The answer stage is greedy even when rationales are sampled: it only reads off the answer.
            calls.append(await self.request(prompt, rationale=rationale, max_tokens=self.cfg.answer_max_tokens,
                                            stop=ANSWER_STOP, temperature=0.0, seed=None))
        except RequestFailed as err:
            return finished_record(example, sample, prompt, [c.text for c in calls], usage_of(calls),
                                   time.perf_counter() - start, status=FAILED, reason=err.reason, error=err.detail,
                                   attempts=sum(c.attempts for c in calls) + err.attempts)
        return finished_record(example, sample, prompt, [c.text for c in calls], usage_of(calls),
                               time.perf_counter() - start, attempts=sum(c.attempts for c in calls))


def _limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


def _read_response(response, *, chat: bool) -> Completion:
    """The text, finish reason and usage of a completion or chat completion response body."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or (choices and not isinstance(choices[0], dict)):
        raise RequestFailed("malformed_response", f"the response is not a completion: {str(response)[:200]}", 1)
    if not choices:
        raise RequestFailed("empty_response", "the response has no choices", 1)
    choice = choices[0]
    text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
    if text is not None and not isinstance(text, str):
        raise RequestFailed("malformed_response", "the response's choice holds no text", 1)
    if not text or not text.strip():
        raise RequestFailed("empty_response", "the response text is empty", 1)
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    return Completion(text, choice.get("finish_reason"), int(usage.get("prompt_tokens") or 0),
                      int(usage.get("completion_tokens") or 0))


def usage_of(calls: list[Completion]) -> dict:
    prompt = sum(c.prompt_tokens for c in calls)
    completion = sum(c.completion_tokens for c in calls)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def teach_endpoint(cfg: TeachConfig, jobs: Iterable[tuple[Example, int]],
                         on_record: Callable[[dict], None]) -> None:
    """Run every (example, sample) job with at most `cfg.concurrency` in flight; `on_record` gets each
    record as soon as it is finished."""
    client = TeacherClient(cfg)
    queue = iter(jobs)

    async def worker() -> None:
        for example, sample in queue:
            on_record(await client.teach(example, sample))

    try:
        await asyncio.gather(*(worker() for _ in range(cfg.concurrency)))
    finally:
        await client.close()
