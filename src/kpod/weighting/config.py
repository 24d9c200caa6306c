"""Settings of the token weighting module and of `kpod weigh` (flags and YAML keys share names)."""

from __future__ import annotations

from dataclasses import dataclass

from kpod.config import field_help


@dataclass
class WeighConfig:
    predictor: str | None = field_help(
        "answer predictor: HF hub name or local dir, seq2seq or causal (paper: FlanT5-Large); default: the student. "
        "In `kpod run`, 'cotd' names the run's plain CoT-distilled student, a reader of the rationales where no "
        "pretrained one exists (the testbed's default; docs/kpod_weighting.md)", None)
    train_predictor: bool = field_help(
        "train the predictor's weights with the module, as the paper does (theta^w includes it); default false: "
        "a frozen pretrained predictor gave a far better signal at small budgets (docs/kpod_weighting.md)", False)
    alpha: float = field_help("Eq. 7: weight of the mask ratio loss L_m (paper: 0.5)", 0.5)
    reader_epochs: float = field_help(
        "predictor warm-up before mask learning: passes over the training rationales in which the predictor "
        "(with the projection and mask vector) learns to produce the answer from the question and a prefix of a "
        "randomly masked rationale; stands in for the paper's pre-trained FlanT5 reader. Default 0 (off): with the "
        "testbed's small base model it did not make the predictor read rationales at CPU budgets "
        "(docs/kpod_weighting.md)", 0.0)
    reader_lr: float = field_help("learning rate of the predictor warm-up", 1e-3)
    warmup: float = field_help(
        "fraction of training steps in which only the predictor side learns, under random masks (keep "
        "probability init_keep), so it reads rationales before the generator is trained", 0.1)
    init_keep: float = field_help(
        "keep probability w_j every token starts from (the generator's output bias); near 1, mask learning "
        "starts from a rationale the predictor can read and prunes it (docs/kpod_weighting.md)", 0.5)
    tau: float = field_help("Eq. 4: Gumbel-Softmax temperature", 1.0)
    prefixes: int = field_help(
        "Eq. 5: prefix lengths sampled per example per step, besides the full rationale", 1)
    lr: float = field_help("learning rate of the module (attention, generator, mask vector, projection)", 1e-3)
    predictor_lr: float = field_help("learning rate of the predictor when it is trained", 1e-3)
    epochs: float = field_help("passes over the training rationales (fractions allowed)", 2.0)
    batch_size: int = field_help("rationales per step", 16)
    max_train: int = field_help(
        "train on a random subset of at most this many rationales (0: all); weights are written for all", 256)
    max_tokens: int = field_help("rationale tokens the module sees in training (longer ones are truncated)", 256)
    heads: int = field_help("attention heads of the module's self-attention layer (Eq. 2)", 4)
    hidden: int = field_help("hidden width of the two-layer MLP weight generator (Eq. 3)", 256)
    floor: float = field_help(
        "written weight = floor + (1 - floor) * w_j, so no token's loss weight reaches 0 (0: the paper's w_j)", 0.2)
    checkpoint_every: int = field_help("save a resumable checkpoint every this many steps", 50)
    write_batch_size: int = field_help("rationales per batch when writing weights", 64)
    heatmap_rationales: int = field_help("rationales shown in heatmap.html", 12)
    device: str = field_help("cpu, cuda, or auto", "auto")
    seed: int = field_help("random seed", 0)

    def __post_init__(self):
        checks = {
            "alpha": self.alpha >= 0, "reader_epochs": self.reader_epochs >= 0, "reader_lr": self.reader_lr > 0,
            "warmup": 0 <= self.warmup < 1, "init_keep": 0 < self.init_keep < 1, "tau": self.tau > 0,
            "prefixes": self.prefixes >= 0, "lr": self.lr > 0,
            "predictor_lr": self.predictor_lr > 0, "epochs": self.epochs > 0, "batch_size": self.batch_size > 0,
            "max_train": self.max_train >= 0, "max_tokens": self.max_tokens > 0, "heads": self.heads > 0,
            "hidden": self.hidden > 0, "floor": 0 <= self.floor < 1, "checkpoint_every": self.checkpoint_every > 0,
            "write_batch_size": self.write_batch_size > 0, "heatmap_rationales": self.heatmap_rationales >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid value for {', '.join(bad)}")
