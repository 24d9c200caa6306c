"""Content-addressed stages: a stage's output directory is named by the hash of everything that
determines it (its settings and the hashes of its inputs), so an unchanged stage is skipped, a
changed one gets a fresh directory, and an interrupted one (a directory without its `.done` marker)
is resumed by the stage itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kpod.io import write_json


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of every file under a directory (by relative path and content)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def content_hash(name: str, key: dict) -> str:
    blob = json.dumps({"stage": name, "key": key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Stage:
    """One pipeline stage. `key` holds every setting and input hash its output depends on;
    `run(out_dir, resume)` writes the output into `out_dir` (resume=True after an interruption)."""

    name: str
    key: dict
    run: Callable[[Path, bool], None]

    @property
    def digest(self) -> str:
        return content_hash(self.name, self.key)


def run_stage(run_dir: Path, stage: Stage, log: Callable[[str], None] = print) -> Path:
    """Run `stage` unless its output for these inputs is already complete; return its directory."""
    out = Path(run_dir) / "stages" / f"{stage.name}-{stage.digest[:10]}"
    marker = out / ".done"
    if marker.exists():
        log(f"[kpod] {stage.name}: unchanged, skipped ({out})")
        return out
    resume = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "stage.json", {"stage": stage.name, "hash": stage.digest, "key": stage.key})
    log(f"[kpod] {stage.name}: {'resuming' if resume else 'running'} ({out})")
    start = time.time()
    stage.run(out, resume)
    write_json(marker, {"hash": stage.digest, "seconds": round(time.time() - start, 2),
                        "environment": computing_environment()})
    return out


def computing_environment() -> dict:
    """What a stage's floating-point results depend on besides its inputs. The same stage computed on
    another CPU (its vector unit picks the matrix kernels), with another number of torch threads or
    with other library versions rounds differently, and training amplifies those last bits into a
    different student; so every `.done` marker records where it was computed."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return {"cpu": f"{cpu}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}",
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version()}


def stage_dir(path: str | Path) -> Path | None:
    """The stage directory (RUN/stages/NAME-HASH) that holds `path`, or None (a hub model name)."""
    for candidate in [Path(path), *Path(path).parents]:
        if candidate.parent.name == "stages" and (candidate / ".done").exists():
            return candidate
    return None


def stage_seconds(out: str | Path) -> float:
    """How long the finished stage in `out` took to compute (by the run that computed it)."""
    return float(json.loads((Path(out) / ".done").read_text())["seconds"])


def stage_environment(out: str | Path) -> dict | None:
    """`computing_environment()` of the run that computed the finished stage in `out` (None for
    stages finished before kpod recorded it)."""
    return json.loads((Path(out) / ".done").read_text()).get("environment")
