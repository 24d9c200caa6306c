"""Serve a local Hugging Face model behind an OpenAI-compatible HTTP API.

    kpod serve --model runs/kpod/final --port 8000

Endpoints: GET /v1/models, POST /v1/completions and POST /v1/chat/completions (no streaming). Any
client of the OpenAI API works against it, `kpod teach` included. Requests that arrive together are
batched: the server collects requests for `--batch-wait-ms` (or until `--max-batch` prompts), groups
them by decoding settings and runs one batched generation per group in a worker thread, so the event
loop keeps accepting requests meanwhile. Each response carries an `X-Kpod-Batch-Size` header: the
number of prompts generated together with it.

Chat messages are rendered with the tokenizer's chat template; a tokenizer without one (kpod's own
students) gets the message contents joined by newlines, which for a user turn "Q: ...\\nA: Let's think
step by step." is exactly the prompt the student was trained on. Greedy text is whitespace-stripped
and ends after the answer sentence ("Therefore, the answer is N."), as in evaluation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from aiohttp import web

from kpod.config import add_config_arguments, config_from_args, field_help
from kpod.errors import ConfigError
from kpod.teacher.hf_backend import LocalGenerator


@dataclass
class ServeConfig:
    model: str = field_help("model to serve: hub name or save_pretrained directory", "")
    host: str = field_help("address to bind", "127.0.0.1")
    port: int = field_help("port (0 picks a free one; the chosen port is printed)", 8000)
    served_model_name: str | None = field_help("model id clients use (default: --model)", None)
    max_batch: int = field_help("most prompts generated together", 32)
    batch_wait_ms: float = field_help("how long to collect concurrent requests before generating", 5.0)
    device: str | None = field_help("torch device (default: cuda when available)", None)
    dtype: str | None = field_help("model dtype (default: the checkpoint's)", None)

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("serve: --model is required")
        if self.max_batch < 1 or self.batch_wait_ms < 0:
            raise ConfigError("serve: --max-batch must be at least 1 and --batch-wait-ms non-negative")


class BadRequest(Exception):
    def __init__(self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


@dataclass(frozen=True)
class Params:
    """Decoding settings; requests with equal settings share a batch."""

    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None


class Batcher:
    """Collects concurrent requests and runs one batched generation per group of equal settings."""

    def __init__(self, generator: LocalGenerator, *, max_batch: int, wait_s: float):
        self.generator, self.max_batch, self.wait_s = generator, max_batch, wait_s
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpod-generate")

    async def submit(self, prompts: list[str], params: Params) -> tuple[list, int]:
        """Completions of `prompts` and the number of prompts generated in the same batch."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((prompts, params, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            size = len(pending[0][0])
            deadline = loop.time() + self.wait_s
            while size < self.max_batch and (remaining := deadline - loop.time()) > 0:
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), remaining))
                except TimeoutError:
                    break
                size += len(pending[-1][0])
            groups = defaultdict(list)
            for item in pending:
                groups[item[1]].append(item)
            for params, items in groups.items():
                await self._generate(loop, params, items)

    async def _generate(self, loop, params: Params, items: list) -> None:
        prompts = [p for item in items for p in item[0]]
        try:
            results = await loop.run_in_executor(self.executor, partial(
                self.generator.complete, prompts, max_tokens=params.max_tokens, temperature=params.temperature,
                top_p=params.top_p, stop=params.stop, seed=params.seed))
        except Exception as err:  # noqa: BLE001 - a generation error fails its requests, not the server
            for *_, future in items:
                if not future.done():
                    future.set_exception(err)
            return
        start = 0
        for item_prompts, _, future in items:
            if not future.done():
                future.set_result((results[start:start + len(item_prompts)], len(prompts)))
            start += len(item_prompts)


def _number(value, name: str, default, kind=float, low=None, high=None):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            kind is int and not float(value).is_integer()):
        raise BadRequest(f"'{name}' must be a{'n integer' if kind is int else ' number'}", param=name)
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(f"'{name}' must be in [{low}, {high if high is not None else 'inf'}]", param=name)
    return kind(value)


def read_params(body: dict, *, default_max_tokens: int) -> tuple[Params, int]:
    """Decoding settings and `n` of a request body (OpenAI's names and defaults)."""
    if body.get("stream"):
        raise BadRequest("streaming is not supported", param="stream")
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise BadRequest("'stop' must be a string or a list of strings", param="stop")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    params = Params(
        max_tokens=_number(max_tokens, "max_tokens", default_max_tokens, int, 1),
        temperature=_number(body.get("temperature"), "temperature", 1.0, float, 0.0, 2.0),
        top_p=_number(body.get("top_p"), "top_p", 1.0, float, 0.0, 1.0),
        stop=tuple(stop),
        seed=_number(body.get("seed"), "seed", None, int),
    )
    return params, _number(body.get("n"), "n", 1, int, 1, 128)


class Server:
    def __init__(self, cfg: ServeConfig, generator: LocalGenerator):
        self.cfg = cfg
        self.name = cfg.served_model_name or cfg.model
        self.generator = generator
        self.batcher = Batcher(generator, max_batch=cfg.max_batch, wait_s=cfg.batch_wait_ms / 1000)
        self.created = int(time.time())

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/completions", partial(self.handle, self.completions))
        app.router.add_post("/v1/chat/completions", partial(self.handle, self.chat))
        app.on_startup.append(self._start_batcher)
        app.on_cleanup.append(self._stop_batcher)
        return app

    async def _start_batcher(self, app) -> None:
        self._task = asyncio.create_task(self.batcher.run())

    async def _stop_batcher(self, app) -> None:
        self._task.cancel()
        self.batcher.executor.shutdown(wait=False, cancel_futures=True)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.name, "object": "model", "created": self.created, "owned_by": "kpod"}]})

    async def handle(self, endpoint, request: web.Request) -> web.Response:
        try:
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BadRequest("the request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            if body.get("model") not in (None, self.name):
                raise BadRequest(f"model '{body['model']}' does not exist; this server has '{self.name}'",
                                 param="model", status=404, code="model_not_found")
            payload, batch = await endpoint(body)
        except BadRequest as err:
            return web.json_response({"error": {"message": str(err), "type": "invalid_request_error",
                                                "param": err.param, "code": err.code}}, status=err.status)
        except Exception as err:  # noqa: BLE001 - report generation errors as OpenAI-style 500s
            return web.json_response({"error": {"message": f"{type(err).__name__}: {err}", "type": "server_error",
                                                "param": None, "code": None}}, status=500)
        return web.json_response(payload, headers={"X-Kpod-Batch-Size": str(batch)})

    async def completions(self, body: dict) -> tuple[dict, int]:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not prompts or not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise BadRequest("'prompt' must be a string or a non-empty list of strings", param="prompt")
        params, n = read_params(body, default_max_tokens=16)
        results, batch = await self.batcher.submit([p for p in prompts for _ in range(n)], params)
        choices = [{"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
                   for i, c in enumerate(results)]
        return self._payload("cmpl", "text_completion", choices, results, prompts, n), batch

    async def chat(self, body: dict) -> tuple[dict, int]:
        prompt = self.chat_prompt(body.get("messages"))
        params, n = read_params(body, default_max_tokens=256)
        results, batch = await self.batcher.submit([prompt] * n, params)
        choices = [{"index": i, "message": {"role": "assistant", "content": c.text}, "logprobs": None,
                    "finish_reason": c.finish_reason} for i, c in enumerate(results)]
        return self._payload("chatcmpl", "chat.completion", choices, results, [prompt], n), batch

    def chat_prompt(self, messages) -> str:
        if not messages or not isinstance(messages, list):
            raise BadRequest("'messages' must be a non-empty list", param="messages")
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str) or "role" not in message:
                raise BadRequest("each message needs a 'role' and a string 'content'", param="messages")
        tokenizer = self.generator.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n".join(m["content"] for m in messages)

    def _payload(self, prefix: str, kind: str, choices: list, results: list, prompts: list[str], n: int) -> dict:
        prompt_tokens = sum(results[i * n].prompt_tokens for i in range(len(prompts)))
        completion_tokens = sum(c.completion_tokens for c in results)
        return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": self.name,
                "choices": choices, "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                              "total_tokens": prompt_tokens + completion_tokens}}


async def serve(cfg: ServeConfig) -> None:
    generator = LocalGenerator(cfg.model, batch_size=cfg.max_batch, device=cfg.device, dtype=cfg.dtype)
    runner = web.AppRunner(Server(cfg, generator).app(), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"kpod serve: serving '{cfg.served_model_name or cfg.model}' at http://{cfg.host}:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, ServeConfig)


def main(args: argparse.Namespace) -> int:
    asyncio.run(serve(config_from_args(ServeConfig, args)))
    return 0
