"""Settings of `kpod eval` (flags and YAML keys share these names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kpod.config import field_help
from kpod.errors import ConfigError


@dataclass
class EvalConfig:
    """`model`, `dataset` and `out` are required by the command; a pipeline config may leave them
    empty and fill them from its other stages."""

    model: str | None = field_help("student to evaluate: a directory written by save_pretrained or a hub name", None)
    dataset: str | None = field_help("built-in data set name, generic JSONL file or directory of <split>.jsonl", None)
    data_dir: str | None = field_help("directory of the raw benchmark files (built-in data sets)", None)
    split: str = field_help("split to evaluate", "test")
    out: str | None = field_help("output directory for predictions.jsonl and metrics.json", None)
    max_new_tokens: int = field_help("generation budget per question", 256)
    batch_size: int = field_help("questions generated together", 32)
    limit: int | None = field_help("only the first N examples", None)
    backend: Literal["auto", "hf", "vllm"] = field_help(
        "generation backend: hf (batched transformers generate), vllm, or auto (vllm when installed with a GPU)",
        "auto")
    device: str = field_help("cpu, cuda, or auto", "auto")
    dtype: str = field_help("model dtype: auto (the checkpoint's), bfloat16, float16, float32", "auto")

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ConfigError("eval: --max-new-tokens and --batch-size must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("eval: --limit must be at least 1")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ConfigError(f"eval: --dtype must be auto, bfloat16, float16 or float32, got {self.dtype!r}")

    def require(self) -> None:
        """The checks of the command line, where model, data set and output are not optional."""
        missing = [f"--{name.replace('_', '-')}" for name in ("model", "dataset", "out") if not getattr(self, name)]
        if missing:
            raise ConfigError(f"eval: {', '.join(missing)} required")
