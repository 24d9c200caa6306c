"""Pre-train the testbed's base students on domain text, so that "the pre-trained student" of Eq. 8
means something: a model that knows the language of the problems and single-step arithmetic but has
never seen a multi-step rationale.

`kpod base-model --data DIR --out OUT` reads DIR/train.jsonl (or any generic JSONL file) and writes
OUT/causal (Llama-style) and OUT/seq2seq (T5-style), each with its tokenizer, loadable with
`from_pretrained` exactly as a hub model is, plus OUT/base_model.json (settings and final losses).

The models train on three kinds of domain text: the training questions, single-step arithmetic
statements ("17 + 5 = 22.") over the numbers the data set uses, and final answer sentences
("Therefore, the answer is 22."). The tokenizer also sees the teacher rationales (a tokenizer only
decides how text is cut into pieces; it learns nothing about reasoning), so that rationale words are
single tokens as they would be for a large pre-trained tokenizer.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from kpod.config import add_config_arguments, config_from_args, field_help, to_dict
from kpod.data.example import Example
from kpod.data.loaders import load_examples
from kpod.data.prompts import answer_sentence
from kpod.errors import DataError
from kpod.io import write_json
from kpod.models.local import ModelSize, causal_model, save_local_model, seq2seq_model, train_tokenizer
from kpod.progress import progress


@dataclass
class BaseModelConfig:
    """Tokenizer, model sizes and the short pre-training run of `kpod base-model`."""

    seed: int = field_help("random seed (initialization, corpus, batches)", 0)
    vocab_size: int = field_help("BPE vocabulary size (digits are always single tokens)", 1024)
    hidden: int = field_help("model width", 128)
    layers: int = field_help("transformer layers (encoder and decoder layers each, for seq2seq)", 3)
    heads: int = field_help("attention heads", 4)
    intermediate: int = field_help("feed-forward width", 384)
    max_positions: int = field_help("longest sequence the causal model accepts", 512)
    block_size: int = field_help("tokens per pre-training sequence (documents are packed)", 128)
    batch_size: int = field_help("sequences per optimizer step", 16)
    causal_steps: int = field_help("optimizer steps for the causal model", 300)
    seq2seq_steps: int = field_help("optimizer steps for the seq2seq model", 100)
    lr: float = field_help("peak learning rate (linear warmup, cosine decay)", 2e-3)
    equations: int = field_help("single-step arithmetic statements in the corpus", 20000)
    skip_seq2seq: bool = field_help("write only OUT/causal", False)

    def size(self) -> ModelSize:
        return ModelSize(hidden=self.hidden, layers=self.layers, heads=self.heads,
                         intermediate=self.intermediate, max_positions=self.max_positions)


def arithmetic_statements(rng: random.Random, count: int, max_value: int) -> list[str]:
    """`count` true single-step statements "a op b = c." with integer results within [0, max_value]."""
    out = []
    while len(out) < count:
        op = rng.choice("+-*/")
        if op == "+":
            c = rng.randint(2, max_value)
            a = rng.randint(1, c - 1)
            out.append(f"{a} + {c - a} = {c}.")
        elif op == "-":
            a = rng.randint(2, max_value)
            b = rng.randint(1, a - 1)
            out.append(f"{a} - {b} = {a - b}.")
        else:
            b = rng.randint(2, 9)
            c = rng.randint(1, max(1, max_value // b))
            out.append(f"{b} * {c} = {b * c}." if op == "*" else f"{b * c} / {b} = {c}.")
    return out


def domain_corpus(examples: list[Example], cfg: BaseModelConfig) -> list[str]:
    """Questions, arithmetic statements (eight per document) and answer sentences, shuffled."""
    rng = random.Random(cfg.seed)
    numbers = [int(n) for ex in examples for n in re.findall(r"\d+", ex.question + " " + ex.answer)]
    max_value = max(10, max(numbers, default=100))
    statements = arithmetic_statements(rng, cfg.equations, max_value)
    docs = [ex.question for ex in examples]
    docs += [" ".join(statements[i:i + 8]) for i in range(0, len(statements), 8)]
    docs += [answer_sentence(ex.answer) for ex in rng.sample(examples, min(len(examples), 2000))]
    rng.shuffle(docs)
    return docs


def pack(tokenizer, docs: list[str], block_size: int) -> torch.Tensor:
    """Concatenate the documents (each closed by EOS) and cut the stream into blocks of block_size."""
    ids: list[int] = []
    for encoded in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids.extend(encoded + [tokenizer.eos_token_id])
    blocks = len(ids) // block_size
    return torch.tensor(ids[: blocks * block_size]).view(blocks, block_size)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup to 1, then cosine decay to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    progress_ = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_))


def _train(model, blocks: torch.Tensor, steps: int, cfg: BaseModelConfig, desc: str, seq2seq: bool) -> float:
    """A plain AdamW loop over random batches of packed blocks; returns the mean loss of the last 20 steps."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, max(1, steps // 10)))
    model.train()
    recent: list[float] = []
    bar = progress(range(steps), desc=desc, unit="step")
    for _ in bar:
        batch = blocks[torch.randint(len(blocks), (cfg.batch_size,), generator=gen)]
        if seq2seq:
            split = int(torch.randint(cfg.block_size // 4, 3 * cfg.block_size // 4, (1,), generator=gen))
            loss = model(input_ids=batch[:, :split], labels=batch[:, split:].contiguous()).loss
        else:
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        recent = (recent + [loss.item()])[-20:]
        bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
    model.eval()
    return sum(recent) / max(1, len(recent))


def build_base_models(data: str | Path, out_dir: str | Path, cfg: BaseModelConfig | None = None) -> dict[str, Path]:
    """Train the tokenizer and the base students on the domain text of `data`; write OUT/causal, OUT/seq2seq."""
    cfg = cfg or BaseModelConfig()
    start = time.perf_counter()
    examples = load_examples(data, "train")
    if not examples:
        raise DataError("no training examples", path=data)
    docs = domain_corpus(examples, cfg)
    tokenizer = train_tokenizer(docs + [r for ex in examples for r in ex.rationales], cfg.vocab_size)
    blocks = pack(tokenizer, docs, cfg.block_size)
    out_dir = Path(out_dir)
    report: dict = {"config": to_dict(cfg), "corpus_documents": len(docs), "corpus_blocks": len(blocks)}
    paths = {}
    model = causal_model(tokenizer, cfg.size(), cfg.seed)
    report["causal_loss"] = _train(model, blocks, cfg.causal_steps, cfg, "base-model causal", seq2seq=False)
    report["causal_parameters"] = sum(p.numel() for p in model.parameters())
    paths["causal"] = save_local_model(model, tokenizer, out_dir / "causal")
    if not cfg.skip_seq2seq:
        model = seq2seq_model(tokenizer, cfg.size(), cfg.seed)
        report["seq2seq_loss"] = _train(model, blocks, cfg.seq2seq_steps, cfg, "base-model seq2seq", seq2seq=True)
        report["seq2seq_parameters"] = sum(p.numel() for p in model.parameters())
        paths["seq2seq"] = save_local_model(model, tokenizer, out_dir / "seq2seq")
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_json(out_dir / "base_model.json", report)
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="testbed directory (reads train.jsonl) or a JSONL file")
    parser.add_argument("--out", required=True, type=Path, help="output directory for causal/ and seq2seq/")
    add_config_arguments(parser, BaseModelConfig)


def main(args: argparse.Namespace) -> int:
    paths = build_base_models(args.data, args.out, config_from_args(BaseModelConfig, args))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
