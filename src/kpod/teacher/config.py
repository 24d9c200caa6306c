"""Settings of `kpod teach` (flags and YAML keys share these names)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kpod.config import field_help
from kpod.errors import ConfigError


@dataclass
class TeachConfig:
    dataset: str = field_help("built-in data set name, generic JSONL file or directory of <split>.jsonl", "")
    out: Path = field_help("records file (JSONL, append-only; a rerun resumes it)", Path("rationales.jsonl"))
    split: str = field_help("split to generate rationales for", "train")
    data_dir: Path | None = field_help("directory of the raw benchmark files", None)
    limit: int | None = field_help("only the first N examples", None)
    backend: Literal["openai", "hf"] = field_help("openai: any OpenAI-compatible endpoint; hf: a local model", "openai")
    endpoint: str = field_help("base URL of the OpenAI-compatible API", "http://127.0.0.1:8000/v1")
    model: str = field_help("model name at the endpoint, or the local model (hub name or dir) with --backend hf", "")
    api: Literal["completions", "chat"] = field_help("request kind: /v1/completions (exact template) or chat",
                                                     "completions")
    api_key_env: str = field_help("environment variable holding the API key", "OPENAI_API_KEY")
    samples: int = field_help("rationales per question (use a temperature > 0 with more than 1)", 1)
    temperature: float = field_help("sampling temperature (0 = greedy)", 0.0)
    top_p: float = field_help("nucleus sampling mass", 1.0)
    max_tokens: int = field_help("token budget of the rationale", 512)
    answer_max_tokens: int = field_help("token budget of the answer stage", 32)
    concurrency: int = field_help("requests in flight at once (openai backend)", 16)
    request_timeout: float = field_help("seconds before one request is abandoned and retried", 120.0)
    max_retries: int = field_help("retries of one request on 429, 5xx, timeouts and dropped connections", 5)
    backoff: float = field_help("first retry delay in seconds (doubles each retry, with jitter)", 1.0)
    max_backoff: float = field_help("longest delay between retries in seconds", 60.0)
    batch_size: int = field_help("generation batch size (hf backend)", 16)
    seed: int = field_help("sampling seed (hf backend; sent to endpoints that honour it)", 0)

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("teach: --model is required (endpoint model name, or a local model with --backend hf)")
        for name in ("samples", "concurrency", "max_tokens", "answer_max_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"teach: --{name.replace('_', '-')} must be at least 1")
        if self.limit is not None and self.limit < 0:
            raise ConfigError("teach: --limit must be non-negative")
        if self.request_timeout <= 0 or self.temperature < 0 or self.max_retries < 0:
            raise ConfigError("teach: --request-timeout must be positive, --temperature and --max-retries non-negative")
