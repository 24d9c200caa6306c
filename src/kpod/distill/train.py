"""Distill teacher rationales into a student (KPOD Eq. 14-15, and the baselines).

    kpod train --data train.jsonl --student DIR_OR_NAME --out runs/kpod
        [--weights WEIGHTS_DIR] [--schedule schedule.json | --curriculum acl|spl|icl] [--dev dev.jsonl]
        [--config train.yaml] [--resume] [--lr 5e-5 --epochs 20 --lora true ...]

Writes DIR/final (save_pretrained: the full student, or LoRA adapters), DIR/train_log.jsonl,
DIR/checkpoints/ and, with --dev, DIR/best and DIR/eval/. Run it under `accelerate launch` for
several GPUs. The Table 2 ablations and the baselines are flags: see kpod.distill.config.
"""

from __future__ import annotations

import argparse
import sys

from kpod.config import add_config_arguments, config_from_args, load_config
from kpod.data.example import rationale_items
from kpod.distill.config import TrainConfig
from kpod.distill.source import RationaleSource
from kpod.distill.trainer import Trainer, TrainingInterrupted
from kpod.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="training examples with rationales (JSONL, directory or data set name)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--weights", help="directory (or file) of weights.jsonl from `kpod weigh`")
    parser.add_argument("--schedule", help="schedule file from `kpod schedule`")
    parser.add_argument("--dev", help="dev examples for evaluation during training")
    parser.add_argument("--config", help="YAML file of train settings (flags override it)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    add_config_arguments(parser, TrainConfig)


def load_curriculum_for(cfg: TrainConfig, schedule: str | None, items, student: str):
    """The curriculum the run follows, or None for c_i = 0 throughout (w.o.-prog, plain CoTD)."""
    if not cfg.progressive or not (schedule or cfg.curriculum):
        return None
    from kpod.curriculum.schedule import load_curriculum

    return load_curriculum(schedule or cfg.curriculum, items=items, epochs=cfg.epochs, student=student, seed=cfg.seed)


def build_source(cfg: TrainConfig, examples, tokenizer, *, weights: str | None = None, curriculum=None) -> RationaleSource:
    """KPOD's sequence source with the ablation switches of `cfg` applied: token weights only when a
    weights directory is given and use_token_weights is on, the curriculum only when progressive is
    on, the first rationales_per_question rationales of each question."""
    from kpod.weighting.store import read_weights, weights_path

    use_weights = bool(weights) and cfg.use_token_weights
    return RationaleSource(
        rationale_items(examples, cfg.rationales_per_question),
        token_weights=read_weights(weights) if use_weights else None,
        curriculum=curriculum if cfg.progressive else None, weight_floor=cfg.weight_floor, tokenizer=tokenizer,
        weights_path=weights_path(weights) if use_weights else None)


def main(args: argparse.Namespace) -> int:
    from kpod.data.loaders import load_examples

    cfg = config_from_args(TrainConfig, args, load_config(TrainConfig, args.config) if args.config else None)
    if not cfg.student:
        raise ConfigError("--student is required (a hub name or a directory written by save_pretrained)")
    examples = load_examples(args.data)
    trainer = Trainer(cfg, args.out)
    curriculum = load_curriculum_for(cfg, args.schedule, rationale_items(examples, cfg.rationales_per_question),
                                     cfg.student)
    source = build_source(cfg, examples, trainer.tokenizer, weights=args.weights, curriculum=curriculum)
    dev = load_examples(args.dev, split="dev") if args.dev else None
    try:
        final = trainer.fit(source, dev=dev, resume=args.resume)
    except TrainingInterrupted as err:
        print(f"kpod train: {err}", file=sys.stderr)
        return 143
    if trainer.is_main:
        print(final)
    return 0
