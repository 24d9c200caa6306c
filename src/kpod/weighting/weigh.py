"""`kpod weigh`: learn token significance weights by mask learning (KPOD Eq. 2-7) and write them.

    kpod weigh --data FILE --student DIR --predictor NAME_OR_DIR --out DIR [--alpha 0.5 ...]

Trains the module of `kpod.weighting.module` on the data's rationales, then writes OUT/weights.jsonl
(every rationale, aligned to the student's tokenizer), OUT/heatmap.html (Figure 2) and
OUT/summary.json. A killed run resumes: training from OUT/checkpoint.pt (saved every
`checkpoint_every` steps; data order and random draws are functions of the step, so the resumed run
follows the same trajectory), writing from the records already in OUT/.weights.partial.jsonl.

Training runs the optional predictor warm-up (`reader_epochs`: the predictor learns to answer from
randomly masked rationale prefixes), then mask learning (Eq. 7), whose first `warmup` fraction of
steps draws random masks.

Eq. 5 sums the answer loss over every prefix k = 0..n of the masked rationale. Each step computes,
per example, the full rationale (k = n) plus `prefixes` lengths drawn uniformly from 0..n-1, and
combines them as (NLL_n + n * mean NLL_sampled) / (n + 1): an unbiased estimate of the sum over
prefixes divided by the known factor n + 1 (see `kpod.weighting.losses.prefix_answer_loss`).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kpod.config import add_config_arguments, config_from_args, to_dict
from kpod.data.example import RationaleItem, rationale_items
from kpod.data.loaders import load_examples
from kpod.errors import DataError, KpodError
from kpod.io import AppendOnlyJsonl, atomic_open, write_json, write_text
from kpod.models.loading import default_device, load_model
from kpod.progress import progress
from kpod.weighting.config import WeighConfig
from kpod.weighting.heatmap import class_means, heatmap_page
from kpod.weighting.losses import sample_prefix_lengths
from kpod.weighting.scoring import body_end
from kpod.weighting.module import (Batch, MaskLearner, WeightGenerator, answer_ids, cue_ids, pad_ids, question_ids,
                                   rationale_tokens)
from kpod.weighting.store import TokenWeights, parse_record, write_weights

CHECKPOINT = "checkpoint.pt"
GENERATOR = "generator.pt"
PARTIAL = ".weights.partial.jsonl"


@dataclass
class Encoded:
    """One rationale tokenized for the module. `rationale` holds the student ids of its body (the
    tokens before the final answer sentence), `offsets` the character span of every student token of
    the whole text, `answer` the predictor ids of the answer y."""

    item: RationaleItem
    question: list[int]
    rationale: list[int]
    offsets: list[tuple[int, int]]
    answer: list[int]


@dataclass
class Parts:
    student_tokenizer: object
    predictor_tokenizer: object
    learner: MaskLearner
    device: torch.device

    @property
    def generator(self) -> WeightGenerator:
        return self.learner.generator


def resolve_device(name: str) -> torch.device:
    return default_device() if name == "auto" else torch.device(name)


def build_parts(student: str, cfg: WeighConfig) -> Parts:
    """Load the student (for its tokenizer and input embeddings) and the predictor; build the module."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    loaded = load_model(student)
    embedding = loaded.model.get_input_embeddings().weight.detach().float().clone()
    student_tokenizer = loaded.tokenizer
    del loaded
    predictor = load_model(cfg.predictor or student, dtype=torch.float32 if device.type == "cpu" else None)
    generator = WeightGenerator(embedding, heads=cfg.heads, hidden=cfg.hidden, init_keep=cfg.init_keep)
    vocab_match = student_tokenizer.get_vocab() == predictor.tokenizer.get_vocab()
    learner = MaskLearner(generator, predictor.model, predictor.is_seq2seq, tau=cfg.tau, alpha=cfg.alpha,
                          train_predictor=cfg.train_predictor, vocab_match=vocab_match).to(device)
    return Parts(student_tokenizer, predictor.tokenizer, learner, device)


def body_length(offsets: list[tuple[int, int]], answer_start: int) -> int:
    """Number of leading tokens that end before the answer sentence starts."""
    return sum(1 for _, end in offsets if end <= answer_start)


def encode(parts: Parts, items: list[RationaleItem]) -> list[Encoded]:
    """Tokenize every item. The module reads only the rationale's body: with the final answer
    sentence in r, Eq. 5's full-rationale term would be solved by copying the stated answer."""
    out = []
    for item in items:
        ids, offsets = rationale_tokens(parts.student_tokenizer, item.rationale)
        body = body_length(offsets, body_end(item.rationale))
        out.append(Encoded(item, question_ids(parts.student_tokenizer, item.question), ids[:body], offsets,
                           answer_ids(parts.predictor_tokenizer, item.answer, parts.learner.is_seq2seq)))
    return out


def make_batch(rows: list[Encoded], cfg: WeighConfig, step: int, cue: list[int]) -> Batch:
    """The batch of one training step; its prefix draws depend only on (seed, step)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    rationales = [r.rationale[: cfg.max_tokens] for r in rows]
    q_ids, q_valid = pad_ids([r.question for r in rows])
    r_ids, r_valid = pad_ids(rationales)
    prefixes = [sample_prefix_lengths(len(r), cfg.prefixes, gen) for r in rationales]
    return Batch(q_ids, q_valid, r_ids, r_valid, [r.answer for r in rows], prefixes, cue)


def batch_indices(n: int, cfg: WeighConfig, step: int) -> list[int]:
    """Rows of step `step`: epoch e shuffles all rows with seed (seed, e) and takes consecutive slices."""
    per_epoch = math.ceil(n / cfg.batch_size)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
    return order[position * cfg.batch_size: (position + 1) * cfg.batch_size].tolist()


def _module_state(learner: MaskLearner, with_predictor: bool) -> dict:
    return {k: v for k, v in learner.state_dict().items()
            if k != "generator.embed.weight" and (with_predictor or not k.startswith("predictor."))}


def _save(path: Path, obj: dict) -> None:
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def phase_of(step: int, reader_steps: int, mask_steps: int, cfg: WeighConfig) -> str:
    """The phase of training step `step`: the predictor warm-up ("reader") first, then mask learning,
    whose first `warmup` fraction draws random masks ("warmup")."""
    if step < reader_steps:
        return "reader"
    return "warmup" if step - reader_steps < cfg.warmup * mask_steps else "mask"


def train(parts: Parts, rows: list[Encoded], cfg: WeighConfig, out_dir: Path | None = None,
          fingerprint: dict | None = None) -> dict:
    """Warm the predictor up (`reader_epochs`), then optimize L_k (Eq. 7) over `rows`; checkpoint into
    `out_dir` and resume from it when given."""
    if not rows:
        raise KpodError("no rationales to train the weighting module on")
    learner = parts.learner
    per_epoch = math.ceil(len(rows) / cfg.batch_size)
    reader_steps = math.ceil(cfg.reader_epochs * per_epoch)
    mask_steps = max(1, math.ceil(cfg.epochs * per_epoch))
    total_steps = reader_steps + mask_steps
    reader_params = [p for name, p in learner.named_parameters()
                     if name.startswith(("predictor.", "projection.")) or name == "mask_vector"]
    optimizers = {"reader": torch.optim.AdamW(reader_params, lr=cfg.reader_lr, weight_decay=0.0),
                  "mask": torch.optim.AdamW(learner.trainable_groups(cfg.lr, cfg.predictor_lr), weight_decay=0.0)}
    with_predictor = cfg.train_predictor or reader_steps > 0
    step, log = 0, AppendOnlyJsonl(out_dir / "train_log.jsonl") if out_dir else None
    checkpoint = out_dir / CHECKPOINT if out_dir else None
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=parts.device, weights_only=False)
        if state["fingerprint"] != fingerprint:
            raise KpodError(f"{checkpoint} was written with other data or settings; remove it or use another --out")
        learner.load_state_dict(state["module"], strict=False)
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        step = state["step"]
    learner.train()
    pending: list[dict] = []
    record = None
    started, trained = time.perf_counter(), 0
    bar = progress(total=total_steps, initial=step, desc="weigh: train", unit="step")
    while step < total_steps:
        phase = phase_of(step, reader_steps, mask_steps, cfg)
        learner.reading(phase == "reader")
        optimizer = optimizers["reader" if phase == "reader" else "mask"]
        batch = make_batch([rows[i] for i in batch_indices(len(rows), cfg, step)], cfg, step,
                           cue_ids(parts.predictor_tokenizer)).to(parts.device)
        torch.manual_seed(cfg.seed * 7919 + step)  # the Gumbel noise (random masks) of this step
        out = learner(batch, phase=phase)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        step += 1
        trained += len(batch.prefixes)
        record = {"step": step, "phase": phase, "loss": out["loss"].item(),
                  "answer_loss": out["answer_loss"].item(), "ratio_loss": out["ratio_loss"].item()}
        pending.append(record)
        bar.update(1)
        bar.set_postfix(phase=phase, loss=f"{record['loss']:.3f}", kept=f"{record['ratio_loss']:.2f}")
        if checkpoint is not None and (step % cfg.checkpoint_every == 0 or step == total_steps):
            _save(checkpoint, {"step": step, "fingerprint": fingerprint,
                               "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
                               "module": _module_state(learner, with_predictor)})
            log.extend(pending)
            pending = []
    bar.close()
    learner.reading(False)
    learner.eval()
    seconds = time.perf_counter() - started
    return {"steps": total_steps, "reader_steps": reader_steps, "rationales_trained": trained,
            "train_seconds": round(seconds, 3),
            "train_rationales_per_s": round(trained / seconds, 2) if trained and seconds > 0 else None,
            "last": record}


def answer_loss_by_phase(records: list[dict], last: int = 10) -> dict[str, float]:
    """Mean answer loss (Eq. 5) over the last `last` logged steps of each training phase. Far higher
    under the learned masks ("mask") than under the warm-up's random ones ("warmup") means the masks
    removed what the reader answers from: a collapse, whose weights do not mark what it needs."""
    by_phase: dict[str, list[float]] = {}
    for record in records:
        by_phase.setdefault(record["phase"], []).append(record["answer_loss"])
    return {phase: float(np.mean(losses[-last:])) for phase, losses in by_phase.items()}


@torch.inference_mode()
def compute_weight_batches(generator: WeightGenerator, rows: list[Encoded], *, floor: float = 0.0,
                           batch_size: int = 64, device: torch.device | str = "cpu", desc: str = "weigh: write"):
    """Yield, batch by batch, [(key, TokenWeights), ...] for every row: w_j (Eq. 3) of every student
    token of the rationale's body, written as floor + (1 - floor) * w_j; tokens of the final answer
    sentence get weight 1 (Eq. 15 weights answer tokens by 1). Values are kept strictly inside (0, 1).
    Batches are sorted by length."""
    generator.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].rationale))
    bar = progress(total=len(rows), desc=desc, unit="rationale")
    for start in range(0, len(order), batch_size):
        chunk = [rows[i] for i in order[start: start + batch_size]]
        ids, valid = pad_ids([r.rationale for r in chunk])
        weights = generator(ids.to(device), valid.to(device)).float().cpu().numpy()
        batch = []
        for b, row in enumerate(chunk):
            w = np.ones(len(row.offsets))
            body = len(row.rationale)
            w[:body] = floor + (1 - floor) * weights[b, :body]
            batch.append((row.item.key, TokenWeights(np.asarray(row.offsets, dtype=np.int64).reshape(-1, 2),
                                                     np.clip(w, 1e-6, 1 - 1e-6))))
        yield batch
        bar.update(len(chunk))
    bar.close()


def compute_weights(generator: WeightGenerator, rows: list[Encoded], **kwargs):
    """`compute_weight_batches`, one (key, TokenWeights) at a time."""
    for batch in compute_weight_batches(generator, rows, **kwargs):
        yield from batch


def body_weights(tw: TokenWeights, body: int) -> TokenWeights:
    """The weights of the first `body` tokens (the rationale without its answer sentence)."""
    return TokenWeights(tw.offsets[:body], tw.weights[:body])


def training_subset(rows: list[Encoded], cfg: WeighConfig) -> list[Encoded]:
    if not cfg.max_train or cfg.max_train >= len(rows):
        return rows
    keep = np.random.default_rng(cfg.seed).permutation(len(rows))[: cfg.max_train]
    return [rows[i] for i in sorted(keep)]


def weight_stats(weights: dict[str, TokenWeights]) -> dict:
    flat = np.concatenate([tw.weights for tw in weights.values()] or [np.zeros(0)])
    if not len(flat):
        return {"tokens": 0}
    q = np.quantile(flat, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    return {"tokens": int(len(flat)), "mean": float(flat.mean()),
            "quantiles": dict(zip(["min", "p05", "p25", "median", "p75", "p95", "max"], map(float, q)))}


def run_weigh(items: list[RationaleItem], student: str, out_dir: str | Path, cfg: WeighConfig,
              source: str = "") -> dict:
    """Train (or resume) and write OUT/weights.jsonl, OUT/heatmap.html, OUT/summary.json."""
    if not items:
        raise DataError("no rationales found", path=source or None)
    keys = [it.key for it in items]
    if len(set(keys)) != len(keys):
        raise DataError("rationale keys are not unique", path=source or None, field="id")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = {"config": to_dict(cfg), "student": str(student), "source": str(source), "keys": len(items)}
    parts = build_parts(student, cfg)
    rows = encode(parts, items)
    generator_file = out_dir / GENERATOR
    if generator_file.exists():
        state = torch.load(generator_file, map_location=parts.device, weights_only=False)
        if state["fingerprint"] != fingerprint:
            raise KpodError(f"{generator_file} was written with other data or settings; use another --out")
        parts.learner.load_state_dict(state["module"], strict=False)
        train_stats = state["train"]
    else:
        train_stats = train(parts, training_subset(rows, cfg), cfg, out_dir, fingerprint)
        _save(generator_file, {"fingerprint": fingerprint, "train": train_stats,
                               "module": _module_state(parts.learner, with_predictor=False)})
        (out_dir / CHECKPOINT).unlink(missing_ok=True)

    partial = AppendOnlyJsonl(out_dir / PARTIAL)
    done = dict(parse_record(r) for r in partial.records() if "id" in r)
    todo = [r for r in rows if r.item.key not in done]
    started = time.perf_counter()
    for batch in compute_weight_batches(parts.generator, todo, floor=cfg.floor, batch_size=cfg.write_batch_size,
                                        device=parts.device):
        partial.extend([tw.to_record(key) for key, tw in batch])  # one fsync per batch; a kill redoes one batch
        done.update(batch)
    write_seconds = time.perf_counter() - started
    ordered = {key: done[key] for key in keys}
    path = write_weights(out_dir, ordered)
    texts = {row.item.key: (row.item.rationale, body_weights(ordered[row.item.key], len(row.rationale)))
             for row in rows}  # answer-sentence tokens are 1 by construction: left out of the means
    write_text(out_dir / "heatmap.html", heatmap_page(texts, limit=cfg.heatmap_rationales))
    summary = {"rationales": len(items), "weights": str(path), "floor": cfg.floor, "train": train_stats,
               "write_seconds": round(write_seconds, 3),
               "write_rationales_per_s": round(len(todo) / write_seconds, 2) if todo and write_seconds > 0 else None,
               "weights_stats": weight_stats(ordered), "class_means": class_means(texts.values()),
               "answer_loss_by_phase": answer_loss_by_phase(AppendOnlyJsonl(out_dir / "train_log.jsonl").records()),
               "config": to_dict(cfg), "student": str(student), "data": str(source)}
    write_json(out_dir / "summary.json", summary)
    partial.path.unlink(missing_ok=True)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="data set: generic JSONL, a testbed directory, or a built-in name")
    parser.add_argument("--split", default="train", help="split to read when --data is a directory or a name")
    parser.add_argument("--student", required=True, help="student model (HF name or dir): tokenizer and embeddings")
    parser.add_argument("--out", required=True, help="output directory")
    add_config_arguments(parser, WeighConfig)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(WeighConfig, args)
    items = rationale_items(load_examples(args.data, split=args.split))
    summary = run_weigh(items, args.student, args.out, cfg, source=args.data)
    means = ", ".join(f"{c} {m['mean']:.3f}" for c, m in summary["class_means"].items() if m["tokens"])
    print(f"wrote {summary['weights']} ({summary['rationales']} rationales); mean weight by class: {means}")
    losses = ", ".join(f"{phase} {loss:.2f}" for phase, loss in summary["answer_loss_by_phase"].items())
    print(f"reader's answer loss over the last 10 steps of each phase (nats): {losses}")
    return 0
