"""Settings of `kpod kpdd` (flags and YAML keys share these names).

Defaults follow what is known of the KPDD paper (learning rate 5e-4, batch 32, 10 epochs, 4
reasoning paths per question); the rest are kpod's documented assumptions (docs/kpdd.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kpod.config import field_help
from kpod.errors import ConfigError
from kpod.kpdd.sandbox import SandboxLimits


@dataclass
class KpddConfig:
    out: Path = field_help("run directory (teacher data, students, evaluations)", Path("runs/kpdd"))
    data: str = field_help("training data: built-in name, generic JSONL file or directory of <split>.jsonl", "")
    data_dir: Path | None = field_help("directory of the raw benchmark files", None)
    split: str = field_help("split the teacher data is made from", "train")
    limit: int | None = field_help("only the first N training questions", None)
    mode: Literal["cot", "pot", "both"] = field_help("solution kind: KPDD-CoT, KPDD-PoT or both", "both")
    source: Literal["auto", "testbed", "calculator", "teacher"] = field_help(
        "teacher data: the testbed's kpdd field, GSM8K calculator annotations, a teacher model, or auto "
        "(testbed when examples carry key points, else calculator)", "auto")
    paths: int = field_help("reasoning paths sampled per question from a teacher (paper: 4)", 4)
    temperature: float = field_help("teacher sampling temperature", 0.7)
    teacher_backend: Literal["openai", "hf"] = field_help("openai: an OpenAI-compatible endpoint; hf: a local model",
                                                          "openai")
    teacher_endpoint: str = field_help("base URL of the teacher's OpenAI-compatible API", "http://127.0.0.1:8000/v1")
    teacher_model: str = field_help("teacher model name at the endpoint, or a local model with --teacher-backend hf", "")
    teacher_api: Literal["completions", "chat"] = field_help("teacher request kind", "completions")
    teacher_max_tokens: int = field_help("token budget of one teacher response", 512)
    concurrency: int = field_help("teacher requests in flight", 16)
    student: str = field_help("base student (hub name or directory) for both students", "")
    key_student: str = field_help("base of KPDD-Key, if not --student", "")
    solve_student: str = field_help("base of KPDD-Solve, if not --student", "")
    shared_student: bool = field_help("train one student for both tasks (key points and solving)", False)
    lr: float = field_help("learning rate (paper: 5e-4)", 5e-4)
    batch_size: int = field_help("training batch size (paper: 32)", 32)
    epochs: int = field_help("training epochs (paper: 10)", 10)
    max_length: int = field_help("token limit of a training sequence", 512)
    seed: int = field_help("seed of training", 0)
    eval_data: list[str] = field_help("data sets to evaluate on (names, files or directories)", [])
    eval_split: str = field_help("split of each evaluation data set", "test")
    eval_limit: int | None = field_help("only the first N evaluation questions", None)
    key_max_new_tokens: int = field_help("generation limit of key points", 160)
    solve_max_new_tokens: int = field_help("generation limit of a solution", 256)
    eval_batch_size: int = field_help("generation batch size", 32)
    sandbox_timeout: float = field_help("seconds a PoT program may run", 2.0)
    sandbox_memory_mb: int = field_help("memory limit of a PoT program", 256)
    sandbox_workers: int = field_help("programs run at once", 2)

    def __post_init__(self) -> None:
        for name in ("paths", "batch_size", "epochs", "max_length", "eval_batch_size", "sandbox_workers",
                     "concurrency", "key_max_new_tokens", "solve_max_new_tokens", "teacher_max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"kpdd: --{name.replace('_', '-')} must be at least 1")
        if self.temperature < 0 or self.sandbox_timeout <= 0 or self.lr <= 0:
            raise ConfigError("kpdd: --temperature must be >= 0, --sandbox-timeout and --lr positive")

    @property
    def modes(self) -> tuple[str, ...]:
        return ("cot", "pot") if self.mode == "both" else (self.mode,)

    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(timeout=self.sandbox_timeout, memory_mb=self.sandbox_memory_mb)

    def base_student(self, task: str) -> str:
        """The base model of a task ("key" or "solve")."""
        name = (self.key_student if task == "key" else self.solve_student) or self.student
        if not name:
            raise ConfigError("kpdd: --student (or --key-student and --solve-student) is required")
        return name
