"""From text to training tensors: the trainer's lower layer (plain prompt/target sequences with
optional per-token weights) and KPOD's stage construction (Eq. 14-15) on top of it.

Lower layer (KPDD and any other method reuse it): a `TrainSequence(key, prompt, target, weight_fn)`
becomes an `Encoded` sequence. For a causal student the input is prompt + " " + target with the loss
on the target tokens and a final EOS; for a seq2seq student the encoder reads the prompt and the
decoder the target (+ EOS). `weight_fn`, when given, maps the character spans of the target's
tokens (in target coordinates) to their loss weights; without it every weight is 1.

KPOD stage t (Sec. 3.4): the prompt is question_prompt(q) plus the first c_i(t) steps of the
rationale, the target is the remaining steps plus answer_sentence(answer). Rationale tokens carry
w_j (looked up by character span in the weights file), answer tokens and EOS carry 1.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kpod.data.prompts import answer_sentence, question_prompt
from kpod.data.steps import StepSplit
from kpod.distill.loss import IGNORE_INDEX
from kpod.weighting.store import TokenWeights, char_span_weights

CAUSAL_SEPARATOR = " "  # between a causal student's prompt and its target


@dataclass
class TrainSequence:
    """One training sequence of the lower layer.

    weight_fn: target-token character spans [(start, end), ...] -> array of loss weights.
    """

    key: str
    prompt: str
    target: str
    weight_fn: Callable[[list[tuple[int, int]]], np.ndarray] | None = None


@dataclass
class Encoded:
    """Token ids of one sequence. For causal students `labels` is aligned with `input_ids`
    (IGNORE_INDEX on the prompt); for seq2seq students `labels` are the decoder's tokens.
    `weights` is aligned with `labels`; `target_offsets` are the character spans of the target tokens
    within the target text (EOS excluded)."""

    key: str
    input_ids: list[int]
    labels: list[int]
    weights: list[float]
    target_offsets: list[tuple[int, int]] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Tokens the student processes (what length grouping sorts by)."""
        return len(self.input_ids) + (0 if len(self.labels) == len(self.input_ids) else len(self.labels))

    @property
    def num_target_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)

    def loss_normalizer(self, by: str) -> float:
        """This sequence's share of Eq. 15's divisor: its target tokens ("tokens") or the sum of their
        weights ("weights")."""
        if by == "tokens":
            return float(self.num_target_tokens)
        return float(sum(w for w, label in zip(self.weights, self.labels) if label != IGNORE_INDEX))


def encode_sequences(tokenizer, sequences: list[TrainSequence], *, seq2seq: bool, max_length: int) -> list[Encoded]:
    """Tokenize prompts and targets (one batched call each) into `Encoded` sequences.

    A causal sequence longer than `max_length` is cut at the end; a seq2seq prompt and target are
    each cut to `max_length`."""
    if not sequences:
        return []
    prompts = tokenizer([s.prompt for s in sequences], add_special_tokens=True)["input_ids"]
    sep = "" if seq2seq else CAUSAL_SEPARATOR
    targets = tokenizer([sep + s.target for s in sequences], add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for seq, prompt_ids, target_ids, offsets in zip(sequences, prompts, targets["input_ids"], targets["offset_mapping"]):
        spans = [(max(s - len(sep), 0), max(e - len(sep), 0)) for s, e in offsets]
        weights = [1.0] * len(target_ids) if seq.weight_fn is None else [float(w) for w in seq.weight_fn(spans)]
        target_ids = list(target_ids) + [tokenizer.eos_token_id]
        weights = weights + [1.0]
        if seq2seq:
            out.append(Encoded(seq.key, list(prompt_ids)[:max_length], target_ids[:max_length], weights[:max_length],
                               spans[:max_length]))
        else:
            ids = (list(prompt_ids) + target_ids)[:max_length]
            labels = ([IGNORE_INDEX] * len(prompt_ids) + target_ids)[:max_length]
            token_weights = ([0.0] * len(prompt_ids) + weights)[:max_length]
            kept = max(len(ids) - len(prompt_ids), 0)
            out.append(Encoded(seq.key, ids, labels, token_weights, spans[:kept]))
    return out


@dataclass(frozen=True)
class StageText:
    """A rationale cut into a stage's prompt and target. `target[:rationale_chars]` is
    `rationale[rationale_start:rationale_start + rationale_chars]`; the rest is the answer sentence."""

    prompt: str
    target: str
    rationale_start: int
    rationale_chars: int


def stage_text(question: str, rationale: str, answer: str, steps: StepSplit, split: int) -> StageText:
    """Prompt and target when the rationale's first `split` characters are given as input (Eq. 14).

    `split` is a step boundary (see `step_split_point`) or any character position (ICL). The
    rationale's own answer sentence is replaced by answer_sentence(answer) with the gold answer."""
    end = steps.steps[-1][1] if steps.steps else 0
    split = min(split, end)
    while split < end and rationale[split].isspace():
        split += 1
    given = rationale[:split].rstrip()
    prompt = question_prompt(question) + (" " + given if given else "")
    part = rationale[split:end]
    target = (part + " " if part else "") + answer_sentence(answer)
    return StageText(prompt, target, split, len(part))


def step_split_point(steps: StepSplit, c: int) -> int:
    """Character position where the target starts when the first `c` steps are input: the start of
    step c + 1 (0 for c = 0, the end of the last step when c >= n_i)."""
    if c <= 0 or not steps.steps:
        return 0
    if c >= len(steps.steps):
        return steps.steps[-1][1]
    return steps.steps[c][0]


def token_fraction_split_point(token_offsets: np.ndarray, fraction: float, text: str | None = None) -> int:
    """ICL's split: the character position after the first round(fraction * n) rationale tokens,
    moved on to the end of the word when `text` is given (the causal input joins prompt and target
    with a space, so the split must fall on whitespace)."""
    k = int(round(fraction * len(token_offsets)))
    point = 0 if k <= 0 or len(token_offsets) == 0 else int(token_offsets[min(k, len(token_offsets)) - 1][1])
    if text is not None and point > 0:
        while point < len(text) and not text[point].isspace():
            point += 1
    return point


def stage_weight_fn(text: StageText, steps: StepSplit, token_weights: TokenWeights | None, *, floor: float = 0.0,
                    step_weights: list[float] | None = None) -> Callable[[list[tuple[int, int]]], np.ndarray] | None:
    """The per-token weights of Eq. 15 for one stage's target: w_j (raised to `floor`) on rationale
    tokens, 1 on the answer sentence; times the SPL weight of the token's step when given."""
    if token_weights is None and step_weights is None:
        return None
    step_starts = [s for s, _ in steps.steps]

    def weights(spans: list[tuple[int, int]]) -> np.ndarray:
        spans_arr = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        in_rationale = spans_arr[:, 0] < text.rationale_chars
        local = spans_arr + text.rationale_start
        out = np.ones(len(spans_arr))
        if token_weights is not None and in_rationale.any():
            out[in_rationale] = np.maximum(char_span_weights(token_weights, local[in_rationale]), floor)
        if step_weights is not None:
            for i in np.flatnonzero(in_rationale):
                step = max(bisect.bisect_right(step_starts, local[i, 0]) - 1, 0)
                out[i] *= step_weights[step] if step < len(step_weights) else 1.0
        return out

    return weights


def step_mean_nll(steps: StepSplit, rationale_start: int, token_offsets: list[tuple[int, int]],
                  token_nll: np.ndarray) -> list[float]:
    """Mean NLL of the target tokens overlapping each step (the curriculum's feedback signal);
    token offsets are in target coordinates, shifted by `rationale_start` into the rationale. A step
    with no scored token (cut by max_length) gets the mean over all scored tokens (0 if none)."""
    offsets = np.asarray(token_offsets, dtype=np.int64).reshape(-1, 2) + rationale_start
    nll = np.asarray(token_nll[: len(offsets)], dtype=np.float64)
    fallback = float(nll.mean()) if len(nll) else 0.0
    out = []
    for start, end in steps.steps:
        hit = (offsets[:, 0] < end) & (offsets[:, 1] > start) & (offsets[:, 1] > offsets[:, 0])
        out.append(float(nll[hit].mean()) if hit.any() else fallback)
    return out
