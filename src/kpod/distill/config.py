"""Settings of `kpod train` (flags and YAML keys share these names).

The Table 2 variants of the KPOD paper and the baselines are settings of this one trainer, so runs
differ in the method only:

| variant | how |
|---|---|
| KPOD | `--weights DIR --schedule FILE` |
| KPOD w.o.-sig | `--use-token-weights false` (uniform weights in Eq. 15) |
| KPOD w.o.-prog | `--progressive false` (c_i = 0 at every stage), or no schedule |
| KPOD w.o.-sig-dif, w.o.-div | a schedule file written by `kpod schedule` with those options |
| KPOD-ACL / SPL / ICL | `--curriculum acl|spl|icl` |
| plain CoT distillation | no weights, no schedule, `--rationales-per-question 1` |
| multi-rationale (SCoTD-style) | `--rationales-per-question K` |
"""

from __future__ import annotations

from dataclasses import dataclass

from kpod.config import field_help


@dataclass
class TrainConfig:
    student: str = field_help("hub name or local directory of the student model", "")
    lr: float = field_help("peak learning rate (paper: 1e-5 LLaMA-7B, 5e-5 FlanT5)", 5e-5)
    epochs: int = field_help("epochs; one progressive stage per epoch", 3)
    batch_size: int = field_help("sequences per micro-batch per process", 8)
    grad_accum: int = field_help("micro-batches per optimizer step", 1)
    max_length: int = field_help("token limit of a training sequence (prompt + target); longer ones are cut at the end", 512)
    seed: int = field_help("seed of initialization, data order and dropout", 0)
    weight_decay: float = field_help("AdamW weight decay", 0.0)
    warmup_ratio: float = field_help("fraction of steps with linear warm-up", 0.0)
    lr_scheduler: str = field_help("transformers scheduler name (linear, cosine, constant, ...)", "linear")
    max_grad_norm: float = field_help("gradient clipping norm (0 = off)", 1.0)
    lora: bool = field_help("train LoRA adapters (peft) instead of all weights", False)
    lora_rank: int = field_help("LoRA rank (paper: 64 LLaMA-7B, 128 FlanT5-XL)", 64)
    lora_alpha: int = field_help("LoRA alpha", 128)
    lora_dropout: float = field_help("LoRA dropout", 0.05)
    lora_target_modules: list[str] = field_help("module names LoRA adapts, or all-linear", ["all-linear"])
    bf16: str = field_help("bf16 mixed precision: auto (when the accelerator has it), true, false", "auto")
    use_token_weights: bool = field_help("weight rationale tokens by w_j (false = KPOD w.o.-sig)", True)
    weight_floor: float = field_help("lower bound applied to every w_j (0 = the paper's raw weights)", 0.0)
    loss_normalizer: str = field_help(
        "what Eq. 15's weighted sum is divided by over the global batch: 'tokens' (the number of target tokens) "
        "or 'weights' (the sum of their w_j, so that down-weighting tokens does not also shrink the loss scale "
        "and with it the effective learning rate)", "tokens")
    progressive: bool = field_help("follow the schedule's c_i(t) (false = KPOD w.o.-prog: c_i = 0)", True)
    curriculum: str = field_help("curriculum method instead of a schedule file: acl, spl, icl", "")
    rationales_per_question: int = field_help("teacher rationales used per question (1 = plain CoTD)", 1)
    eval_every: int = field_help("dev evaluation every N optimizer steps and after the last (0 = at each epoch end)", 0)
    eval_max_new_tokens: int = field_help("generation limit of dev evaluation", 256)
    eval_batch_size: int = field_help("batch size of dev evaluation", 32)
    save_every: int = field_help("checkpoint every N optimizer steps (0 = at each epoch end)", 0)
    save_merged: bool = field_help("also write LoRA-merged full weights to DIR/final-merged", False)
    log_every: int = field_help("log every N optimizer steps", 10)
    report_to: str = field_help("trackers: auto (tensorboard if installed), none, tensorboard, wandb", "auto")
    compile: bool = field_help("torch.compile the student's transformer body", False)
    gradient_checkpointing: bool = field_help("recompute activations in backward to save memory", False)
    loss_chunk_tokens: int = field_help("target tokens per chunk of the output projection + cross-entropy", 2048)
    group_by_length: bool = field_help("batch sequences of similar length (no compute on padding)", True)

    def __post_init__(self):
        if self.bf16 not in ("auto", "true", "false"):
            raise ValueError(f"bf16 must be auto, true or false, not {self.bf16!r}")
        if self.curriculum not in ("", "acl", "spl", "icl"):
            raise ValueError(f"curriculum must be acl, spl or icl, not {self.curriculum!r}")
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "rationales_per_question", "loss_chunk_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0.0 <= self.weight_floor <= 1.0:
            raise ValueError("weight_floor must lie in [0, 1]")
        if self.loss_normalizer not in ("tokens", "weights"):
            raise ValueError(f"loss_normalizer must be tokens or weights, not {self.loss_normalizer!r}")
