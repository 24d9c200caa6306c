"""Batches without wasted compute: length-grouped, deterministic per (seed, epoch), resumable.

An epoch is a list of optimizer steps; each step is a list of example indices (the global batch:
batch_size x grad_accum x processes). The list depends only on the lengths, the seed and the epoch,
so a resumed run skips the steps it has done and sees exactly the batches it would have seen.
Within a step the examples are sorted by length and cut into grad_accum x processes micro-batches of
similar length, so padding is small and the step's gradient does not depend on how it is split.
"""

from __future__ import annotations

import numpy as np
import torch

from kpod.distill.encoding import Encoded
from kpod.distill.loss import IGNORE_INDEX

MEGABATCH_STEPS = 32  # steps whose examples are sorted together (randomness across, homogeneity within)


def step_batches(lengths: list[int], *, global_batch: int, seed: int, epoch: int,
                 group_by_length: bool = True) -> list[list[int]]:
    """Example indices of every optimizer step of one epoch."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if not group_by_length:
        return [order[i:i + global_batch].tolist() for i in range(0, len(order), global_batch)]
    lengths_arr = np.asarray(lengths)
    mega = global_batch * MEGABATCH_STEPS
    grouped = np.concatenate([chunk[np.argsort(-lengths_arr[chunk], kind="stable")]
                              for chunk in np.split(order, range(mega, len(order), mega))]) if len(order) else order
    steps = [grouped[i:i + global_batch].tolist() for i in range(0, len(grouped), global_batch)]
    return [steps[i] for i in rng.permutation(len(steps))]


def micro_batches(step: list[int], lengths: list[int], count: int) -> list[list[int]]:
    """Split one step's examples into `count` micro-batches of similar length (some may be empty
    when the step has fewer than `count` examples)."""
    ordered = sorted(step, key=lambda i: (-lengths[i], i))
    return [part.tolist() for part in np.array_split(np.asarray(ordered, dtype=np.int64), count)]


def process_micro_batches(step: list[int], lengths: list[int], *, grad_accum: int, num_processes: int,
                          process_index: int) -> list[list[int]]:
    """This process's grad_accum micro-batches of a step (micro-batches dealt round-robin)."""
    return micro_batches(step, lengths, grad_accum * num_processes)[process_index::num_processes]


def collate(encoded: list[Encoded], *, pad_id: int, pad_to_multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE_INDEX on padding), weights."""

    def width(n: int) -> int:
        return -(-n // pad_to_multiple_of) * pad_to_multiple_of

    def pad(rows: list[list], value, dtype) -> torch.Tensor:
        size = width(max(len(r) for r in rows))
        return torch.tensor([list(r) + [value] * (size - len(r)) for r in rows], dtype=dtype)

    inputs = [e.input_ids for e in encoded]
    batch = {
        "input_ids": pad(inputs, pad_id, torch.long),
        "attention_mask": pad([[1] * len(r) for r in inputs], 0, torch.long),
        "labels": pad([e.labels for e in encoded], IGNORE_INDEX, torch.long),
        "weights": pad([e.weights for e in encoded], 0.0, torch.float32),
    }
    return batch
