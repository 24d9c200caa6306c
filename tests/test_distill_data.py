"""Length-grouped, deterministic, resumable batches."""

from __future__ import annotations

import torch

from kpod.distill.data import collate, micro_batches, process_micro_batches, step_batches
from kpod.distill.encoding import Encoded
from kpod.distill.loss import IGNORE_INDEX


def test_step_batches_cover_every_example_once_and_are_deterministic():
    lengths = [(i * 37) % 101 + 5 for i in range(203)]
    steps = step_batches(lengths, global_batch=8, seed=3, epoch=1)
    assert sorted(i for s in steps for i in s) == list(range(203))
    assert steps == step_batches(lengths, global_batch=8, seed=3, epoch=1)
    assert steps != step_batches(lengths, global_batch=8, seed=3, epoch=2)
    # grouping keeps each batch's lengths close: far less padding than random batches
    def padding(batches):
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)
    random = step_batches(lengths, global_batch=8, seed=3, epoch=1, group_by_length=False)
    assert padding(steps) < padding(random) / 3


def test_micro_batches_partition_a_step_across_processes():
    lengths = list(range(10))
    step = [9, 2, 5, 7, 1, 0, 3]
    parts = micro_batches(step, lengths, 4)
    assert parts == [[9, 7], [5, 3], [2, 1], [0]]
    ranks = [process_micro_batches(step, lengths, grad_accum=2, num_processes=2, process_index=r) for r in (0, 1)]
    assert ranks == [[[9, 7], [2, 1]], [[5, 3], [0]]]
    assert micro_batches([4], lengths, 3) == [[4], [], []]


def test_collate_pads_right_and_ignores_padding():
    a = Encoded("a", [5, 6, 7], [IGNORE_INDEX, 6, 7], [0.0, 0.5, 1.0])
    b = Encoded("b", [8, 9], [IGNORE_INDEX, 9], [0.0, 1.0])
    batch = collate([a, b], pad_id=0, pad_to_multiple_of=4)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX], [IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX]]
    assert torch.equal(batch["weights"], torch.tensor([[0.0, 0.5, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
