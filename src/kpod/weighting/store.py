"""weights.jsonl: the token weights `kpod weigh` writes and later stages read.

One line per rationale key: {"id": key, "offsets": [[start, end], ...], "weights": [...]}: the
character span of each student token within the rationale text and its weight in (0, 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kpod.errors import DataError
from kpod.io import read_jsonl, write_jsonl

WEIGHTS_FILE = "weights.jsonl"


@dataclass
class TokenWeights:
    offsets: np.ndarray  # (n, 2) int: [start, end) character spans within the rationale
    weights: np.ndarray  # (n,) float

    def to_record(self, key: str) -> dict:
        return {"id": key, "offsets": self.offsets.astype(int).tolist(),
                "weights": [round(float(w), 6) for w in self.weights]}


def weights_path(path: str | os.PathLike) -> Path:
    """DIR/weights.jsonl for a directory, or the file itself."""
    path = Path(path)
    return path / WEIGHTS_FILE if path.is_dir() or path.suffix != ".jsonl" else path


def write_weights(path: str | os.PathLike, weights: dict[str, TokenWeights]) -> Path:
    """Write all records atomically, in the order of `weights`."""
    target = weights_path(path)
    write_jsonl(target, (tw.to_record(key) for key, tw in weights.items()))
    return target


def parse_record(record: dict, path: object = None, line: int | None = None) -> tuple[str, TokenWeights]:
    """Check one weights.jsonl record and turn it into (key, TokenWeights)."""
    try:
        offsets = np.asarray(record["offsets"], dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise DataError("expected a list of [start, end] pairs", path=path, line=line, field="offsets") from None
    try:
        weights = np.asarray(record["weights"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError("expected a list of numbers", path=path, line=line, field="weights") from None
    if len(weights) != len(offsets):
        raise DataError(f"{len(weights)} weights for {len(offsets)} offsets", path=path, line=line, field="weights")
    if len(weights) and (not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.max() > 1):
        raise DataError("weights must lie in [0, 1]", path=path, line=line, field="weights")
    return str(record["id"]), TokenWeights(offsets, weights)


def read_weights(path: str | os.PathLike) -> dict[str, TokenWeights]:
    """Read DIR/weights.jsonl (or a .jsonl file) into {key: TokenWeights}; duplicates are errors."""
    target = weights_path(path)
    out: dict[str, TokenWeights] = {}
    for line, record in read_jsonl(target, required=("id", "offsets", "weights")):
        key, tw = parse_record(record, target, line)
        if key in out:
            raise DataError(f"duplicate key {key!r}", path=target, line=line, field="id")
        out[key] = tw
    return out


def char_span_weights(tw: TokenWeights, spans) -> np.ndarray:
    """Weight of each query character span [start, end): the mean weight of the weight-tokens it
    overlaps, 1.0 where it overlaps none. Lets a consumer with another tokenizer (or with steps)
    read the weights."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if len(tw.weights) == 0 or len(spans) == 0:
        return np.ones(len(spans))
    starts, ends = tw.offsets[:, 0], tw.offsets[:, 1]
    overlap = (starts[None, :] < spans[:, 1:2]) & (spans[:, 0:1] < ends[None, :])  # (queries, tokens)
    count = overlap.sum(axis=1)
    total = overlap @ tw.weights
    return np.where(count > 0, total / np.maximum(count, 1), 1.0)
