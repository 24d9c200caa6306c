"""The distillation trainer: one accelerate loop for CPU, one GPU and `accelerate launch` (DDP,
FSDP, DeepSpeed), causal and seq2seq students, LoRA or full fine-tuning.

    trainer = Trainer(cfg, out_dir)
    trainer.fit(source, dev=dev_examples, resume=False)   # source: kpod.distill.source

Every optimizer step takes a global batch of batch_size x grad_accum x processes sequences; the
loss of Eq. 15 is divided by the number of target tokens in that whole global batch, so the step's
gradient is the same however it is split. Checkpoints (DIR/checkpoints/step-N, the newest named in
DIR/checkpoints/latest) hold model, optimizer, scheduler, RNG states, the position in the epoch and
the curriculum's feedback so far; `resume=True` continues the same trajectory. SIGTERM finishes the
current optimizer step, writes a checkpoint and exits.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, set_seed
from transformers import get_scheduler

from kpod.config import to_dict
from kpod.data.example import Example
from kpod.distill.config import TrainConfig
from kpod.distill.data import collate, process_micro_batches, step_batches
from kpod.distill.encoding import Encoded, TrainSequence, encode_sequences
from kpod.distill.loss import IGNORE_INDEX, chunked_token_nll, eq15_loss
from kpod.distill.source import SequenceSource
from kpod.errors import KpodError
from kpod.io import AppendOnlyJsonl, write_json, write_jsonl, write_text
from kpod.models.loading import LoadedModel, load_model
from kpod.progress import progress

T5_FAMILY = ("t5", "mt5", "umt5")


class TrainingInterrupted(KpodError):
    """SIGTERM arrived; a checkpoint was written and `--resume` continues from it."""


class DistillModel(torch.nn.Module):
    """A student whose forward returns the per-token NLL of the target tokens and their weights.

    Only target positions go through the output projection, chunk by chunk (kpod.distill.loss), for
    causal LMs with a separate transformer body and for T5-family seq2seq models; other
    architectures fall back to the model's own logits. DDP/FSDP wrap this module, so the loss is part
    of the wrapped forward.
    """

    def __init__(self, model: torch.nn.Module, seq2seq: bool, chunk_tokens: int = 2048, compile_body: bool = False):
        super().__init__()
        self.model = model
        self.seq2seq = seq2seq
        self.chunk_tokens = chunk_tokens
        base = self.student
        config = base.config
        if seq2seq:
            self.fast = config.model_type in T5_FAMILY
        else:
            self.fast = base.base_model is not base and getattr(config, "final_logit_softcapping", None) is None
        # kept out of the module tree so that state dicts name each parameter once
        self.__dict__["_body"] = torch.compile(base.base_model) if compile_body and self.fast and not seq2seq else None

    @property
    def student(self) -> torch.nn.Module:
        """The transformers model (under a peft wrapper when LoRA is on)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def forward(self, input_ids, attention_mask, labels, weights):
        base = self.student
        if self.seq2seq:
            decoder_input_ids = base.prepare_decoder_input_ids_from_labels(labels=labels)
            target_labels, target_weights = labels, weights
        else:  # position p predicts token p + 1
            target_labels, target_weights = labels[:, 1:], weights[:, 1:]
        mask = target_labels != IGNORE_INDEX
        targets, token_weights = target_labels[mask], target_weights[mask]
        if not self.fast:
            kwargs = {"decoder_input_ids": decoder_input_ids} if self.seq2seq else {}
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
            rows = logits if self.seq2seq else logits[:, :-1]
            return chunked_token_nll(rows[mask], torch.nn.Identity(), targets, self.chunk_tokens), token_weights
        if self.seq2seq:
            encoded = base.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            hidden = base.get_decoder()(input_ids=decoder_input_ids, encoder_hidden_states=encoded,
                                        encoder_attention_mask=attention_mask).last_hidden_state
            # T5 rescales before the output projection (transformers < 5: whenever embeddings are tied)
            if getattr(base.config, "scale_decoder_outputs", base.config.tie_word_embeddings):
                hidden = hidden * (base.config.d_model ** -0.5)
        else:
            body = self._body or base.base_model
            hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, :-1]
        return chunked_token_nll(hidden[mask], base.get_output_embeddings(), targets, self.chunk_tokens), token_weights


def mixed_precision(setting: str) -> str:
    """bf16 when asked, or (auto) when a CUDA device supports it."""
    if setting == "true" or (setting == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        return "bf16"
    return "no"


def _trackers(report_to: str) -> list[str]:
    if report_to == "none":
        return []
    if report_to != "auto":
        return [t for t in report_to.split(",") if t]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return []
    return ["tensorboard"]


def add_lora(model: torch.nn.Module, cfg: TrainConfig, seq2seq: bool) -> torch.nn.Module:
    from peft import LoraConfig, TaskType, get_peft_model

    targets = cfg.lora_target_modules
    lora = LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM, r=cfg.lora_rank,
                      lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear" if targets == ["all-linear"] else targets)
    return get_peft_model(model, lora)


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: str | Path):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.accelerator = Accelerator(mixed_precision=mixed_precision(cfg.bf16), log_with=_trackers(cfg.report_to) or None,
                                       project_dir=str(self.out))
        set_seed(cfg.seed)
        loaded = load_model(cfg.student, dtype=torch.float32)
        self.tokenizer, self.seq2seq = loaded.tokenizer, loaded.is_seq2seq
        model = loaded.model
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.lora:
            model = add_lora(model, cfg, self.seq2seq)
        self.model = DistillModel(model, self.seq2seq, cfg.loss_chunk_tokens, cfg.compile)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                           fused=self.accelerator.device.type == "cuda")
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        self.pad_multiple = 8 if self.accelerator.device.type == "cuda" else 1
        self._stop = False

    # ----------------------------------------------------------------- helpers
    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def unwrapped(self) -> DistillModel:
        return self.accelerator.unwrap_model(self.model)

    def encode(self, sequences: list[TrainSequence]) -> list[Encoded]:
        return encode_sequences(self.tokenizer, sequences, seq2seq=self.seq2seq, max_length=self.cfg.max_length)

    def _batch(self, encoded: list[Encoded]) -> dict[str, torch.Tensor]:
        batch = collate(encoded, pad_id=self.tokenizer.pad_token_id, pad_to_multiple_of=self.pad_multiple)
        return {k: v.to(self.accelerator.device) for k, v in batch.items()}

    def _global_sum(self, values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
        return self.accelerator.reduce(tensor, reduction="sum").tolist() if self.accelerator.num_processes > 1 else values

    @torch.inference_mode()
    def score(self, sequences: list[TrainSequence]) -> list[tuple[Encoded, np.ndarray]]:
        """Per-token NLL of each sequence's target under the current student (input order)."""
        encoded = self.encode(sequences)
        model = self.unwrapped
        was_training = model.training
        model.eval()
        out: list[tuple[Encoded, np.ndarray] | None] = [None] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda i: -encoded[i].length)
        size = self.cfg.batch_size * 4
        for start in range(0, len(order), size):
            idx = order[start:start + size]
            with self.accelerator.autocast():
                nll, _ = model(**self._batch([encoded[i] for i in idx]))
            counts = [encoded[i].num_target_tokens for i in idx]
            for i, part in zip(idx, torch.split(nll.float().cpu(), counts)):
                out[i] = (encoded[i], part.numpy())
        model.train(was_training)
        return out

    # ------------------------------------------------------------ checkpoints
    def _latest_checkpoint(self) -> Path | None:
        pointer = self.ckpt_dir / "latest"
        if not pointer.exists():
            return None
        path = self.ckpt_dir / pointer.read_text().strip()
        return path if (path / "trainer_state.json").exists() else None

    def save_checkpoint(self, state: dict, scheduler) -> None:
        name = f"step-{state['global_step']}"
        path = self.ckpt_dir / name
        self.accelerator.save_state(str(path))
        if self.is_main:
            torch.save(scheduler.state_dict(), path / "lr_scheduler.pt")
            write_json(path / "trainer_state.json", state)
            write_text(self.ckpt_dir / "latest", name + "\n")
            for old in self.ckpt_dir.glob("step-*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()

    def _load_checkpoint(self, path: Path, scheduler) -> dict:
        self.accelerator.load_state(str(path))
        scheduler.load_state_dict(torch.load(path / "lr_scheduler.pt", weights_only=False))
        return json.loads((path / "trainer_state.json").read_text())

    def save_model(self, path: Path, *, merged: bool = False) -> None:
        if self.is_main:
            model = self.unwrapped.model
            if merged:
                model = model.merge_and_unload()
            model.save_pretrained(path)
            self.tokenizer.save_pretrained(path)
        self.accelerator.wait_for_everyone()

    # ---------------------------------------------------------------- evaluation
    def evaluate_dev(self, dev: list[Example], step: int) -> dict:
        """Dev accuracy of the current student (computed on the main process, shared with all)."""
        from kpod.eval.evaluate import evaluate

        metrics = [None]
        if self.is_main:
            student = self.unwrapped.model
            student.eval()
            metrics[0] = evaluate(LoadedModel(student, self.tokenizer, self.seq2seq), dev,
                                  self.out / "eval" / f"step-{step}", max_new_tokens=self.cfg.eval_max_new_tokens,
                                  batch_size=self.cfg.eval_batch_size)
            student.train()
        if self.accelerator.num_processes > 1:
            broadcast_object_list(metrics)
        return metrics[0]

    # ------------------------------------------------------------------- loop
    def fit(self, source: SequenceSource, *, dev: list[Example] | None = None, resume: bool = False) -> Path:
        cfg, acc = self.cfg, self.accelerator
        global_batch = cfg.batch_size * cfg.grad_accum * acc.num_processes
        num_items = len(source.sequences(0))
        steps_per_epoch = math.ceil(num_items / global_batch)
        total_steps = steps_per_epoch * cfg.epochs
        scheduler = get_scheduler(cfg.lr_scheduler, self.optimizer, num_warmup_steps=int(cfg.warmup_ratio * total_steps),
                                  num_training_steps=total_steps)
        state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_accuracy": None, "best_step": None,
                 "feedback": {}, "config": to_dict(cfg)}
        log = AppendOnlyJsonl(self.out / "train_log.jsonl")
        checkpoint = self._latest_checkpoint() if resume else None
        if checkpoint is not None:
            state = self._load_checkpoint(checkpoint, scheduler)
            for epoch, feedback in sorted(state["feedback"].items(), key=lambda kv: int(kv[0])):
                source.observe(int(epoch), feedback)
            if self.is_main:  # drop what the killed run logged after its checkpoint
                write_jsonl(log.path, [r for r in log.records() if r.get("step", 0) <= state["global_step"]])
        elif self.is_main and log.path.exists():
            log.path.unlink()
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "train_config.json", to_dict(cfg))
        acc.init_trackers("kpod", config={k: v for k, v in to_dict(cfg).items() if not isinstance(v, list)})
        in_main_thread = threading.current_thread() is threading.main_thread()  # signals need the main thread
        previous = signal.signal(signal.SIGTERM, self._on_sigterm) if in_main_thread else None
        bar = progress(total=total_steps, desc="train", unit="step", initial=state["global_step"])
        self.model.train()
        try:
            for epoch in range(state["epoch"], cfg.epochs):
                self._run_epoch(epoch, source, state, scheduler, log, bar, dev)
                if source.needs_feedback:
                    feedback = source.measure(self.score)
                    source.observe(epoch, feedback)
                    state["feedback"][str(epoch)] = feedback
                state.update(epoch=epoch + 1, step_in_epoch=0)
                if dev and cfg.eval_every == 0:
                    self._evaluate(dev, state, log)
                self.save_checkpoint(state, scheduler)
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
            bar.close()
        self.save_model(self.out / "final")
        if cfg.save_merged and cfg.lora:
            self.save_model(self.out / "final-merged", merged=True)
        acc.end_training()
        return self.out / "final"

    def _on_sigterm(self, signum, frame) -> None:
        self._stop = True

    def _run_epoch(self, epoch, source, state, scheduler, log, bar, dev) -> None:
        cfg, acc = self.cfg, self.accelerator
        world, rank = acc.num_processes, acc.process_index
        encoded = self.encode(source.sequences(epoch))
        lengths = [e.length for e in encoded]
        steps = step_batches(lengths, global_batch=cfg.batch_size * cfg.grad_accum * world, seed=cfg.seed,
                             epoch=epoch, group_by_length=cfg.group_by_length)
        stage = source.stats(epoch)
        window = np.zeros(4)  # weighted NLL sum, NLL sum, target tokens, processed tokens
        window_start = time.perf_counter()
        for step_index in range(state["step_in_epoch"], len(steps)):
            micro = process_micro_batches(steps[step_index], lengths, grad_accum=cfg.grad_accum,
                                          num_processes=world, process_index=rank)
            local_share = sum(encoded[i].loss_normalizer(cfg.loss_normalizer) for m in micro for i in m)
            normalizer, stop = self._global_sum([local_share, float(self._stop)])
            for k, indices in enumerate(micro):
                # an empty micro-batch still runs (with zero weight) so every process joins the all-reduce
                batch = self._batch([encoded[i] for i in indices] or [encoded[steps[step_index][0]]])
                if not indices:
                    batch["weights"].zero_()
                sync = k == len(micro) - 1
                with (acc.no_sync(self.model) if not sync and world > 1 else nullcontext()), acc.autocast():
                    nll, weights = self.model(**batch)
                    loss = eq15_loss(nll, weights, max(normalizer, 1.0)) * world
                acc.backward(loss)
                if indices:
                    window += [float((weights * nll.detach()).sum()), float(nll.detach().sum()), len(nll),
                               float(batch["attention_mask"].sum()) + (len(nll) if self.seq2seq else 0)]
            if cfg.max_grad_norm > 0:
                acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            self.optimizer.step()
            scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            state["global_step"] += 1
            state["step_in_epoch"] = step_index + 1
            bar.update(1)
            save = stop or (cfg.save_every and state["global_step"] % cfg.save_every == 0
                            and step_index < len(steps) - 1)
            if save or state["global_step"] % cfg.log_every == 0 or step_index == len(steps) - 1:
                window_start = self._log(window, window_start, lr, epoch, state, stage, log, bar)
                window[:] = 0
            last_step = epoch == cfg.epochs - 1 and step_index == len(steps) - 1
            if dev and cfg.eval_every and (state["global_step"] % cfg.eval_every == 0 or last_step):
                self._evaluate(dev, state, log)
            if save:
                self.save_checkpoint(state, scheduler)
            if stop:
                raise TrainingInterrupted(f"stopped by SIGTERM at step {state['global_step']}; "
                                          f"checkpoint in {self.ckpt_dir}, continue with --resume")

    def _log(self, window, window_start, lr, epoch, state, stage, log, bar) -> float:
        weighted, plain, tokens, processed = self._global_sum(window.tolist())
        now = time.perf_counter()
        record = {"step": state["global_step"], "epoch": epoch, "loss": plain / max(tokens, 1),
                  "weighted_loss": weighted / max(tokens, 1), "lr": lr, "target_tokens": int(tokens),
                  "tokens_per_s": round(processed / max(now - window_start, 1e-9), 1), **stage}
        if self.is_main:
            log.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}", c=stage.get("mean_input_steps", 0))
        self.accelerator.log({k: v for k, v in record.items() if k != "step"}, step=state["global_step"])
        return now

    def _evaluate(self, dev, state, log) -> None:
        metrics = self.evaluate_dev(dev, state["global_step"])
        if self.is_main:
            log.append({"step": state["global_step"], "epoch": state["epoch"], "eval": metrics})
        self.accelerator.log({f"dev/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))},
                             step=state["global_step"])
        if state["best_accuracy"] is None or metrics["accuracy"] > state["best_accuracy"]:
            state.update(best_accuracy=metrics["accuracy"], best_step=state["global_step"])
            self.save_model(self.out / "best")
