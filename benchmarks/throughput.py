"""Training and generation throughput, side by side in one process (issue 10).

    OMP_NUM_THREADS=1 python benchmarks/throughput.py --device cpu   # 2M-parameter Llama shape, short examples
    python benchmarks/throughput.py --device cuda     # Qwen2.5-0.5B shape (bf16), and a 7B-class LoRA shape

Training contenders, each on the same model (random weights, built from a config, saved once and
loaded by every contender) and the same examples (synthetic GSM8K-like problems whose lengths follow
GSM8K's: 120-400 tokens on cuda, a quarter of that on cpu):

- kpod: `kpod.distill.trainer.Trainer` with the KPOD loss (Eq. 15 with token weights in (0, 1));
- trl: TRL's SFTTrainer with its defaults, then with its speed options (padding_free without
  gradient checkpointing; packing), on a prompt/completion data set (loss on the completion);
- plain: a PyTorch loop over shuffled batches padded to their longest example, the model's own
  (unfused, full-vocabulary float32) loss and torch's AdamW.

All use fp32 master weights with bf16 autocast on cuda (fp32 on cpu), batch 32 on cuda (8 on cpu)
and the same learning rate and gradient clipping. Throughput counts real (non-padding) tokens per
second over the optimizer steps after a warm-up (model loading, data preparation and checkpoint
writing are outside the window); MFU takes 6 x parameters FLOPs per token (4 x for LoRA: frozen
weights need no weight gradients) against the GPU's dense bf16 peak; peak memory is CUDA's
max_memory_allocated (null on cpu). On a shared CPU, one thread (OMP_NUM_THREADS=1) gives steadier
figures than several threads fighting over the cores; only the ratios mean anything there.

Generation: examples/s of `kpod.eval.generate.generate` (batched, length-sorted, KV cache) against
`model.generate` called once per example, on the same model and prompts with the same token budget
(a random model rarely stops early, so both generate about max_new_tokens tokens), and vLLM where
installed.

The last line printed is one JSON object (also written to benchmarks/results/throughput_<device>.json).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("KPOD_NO_PROGRESS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config  # noqa: E402

from kpod.data.prompts import answer_sentence, question_prompt  # noqa: E402
from kpod.distill.config import TrainConfig  # noqa: E402
from kpod.distill.encoding import TrainSequence  # noqa: E402
from kpod.distill.source import StaticSource  # noqa: E402
from kpod.distill.trainer import Trainer  # noqa: E402
from kpod.eval.generate import generate, generate_vllm, vllm_available  # noqa: E402
from kpod.io import write_json  # noqa: E402
from kpod.models.loading import load_tokenizer  # noqa: E402
from kpod.models.local import train_tokenizer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# Dense bf16 tensor-core peaks (datasheet, without sparsity), by a substring of the device name.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 70e12}


@dataclass
class Setup:
    """What one device's run uses."""

    config: object
    batch_size: int
    warmup_steps: int
    measured_steps: int
    length_range: tuple[int, int]
    length_median: int
    eval_examples: int
    eval_naive_examples: int
    eval_batch_size: int
    max_new_tokens: int
    dtype: torch.dtype


def qwen25_05b_config() -> Qwen2Config:
    """The published dimensions of Qwen2.5-0.5B (494M parameters)."""
    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True)


def qwen25_7b_config(layers: int) -> Qwen2Config:
    """The published dimensions of Qwen2.5-7B (7.6B parameters at its 28 layers)."""
    return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=layers,
                       num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                       rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=False)


def small_llama_config() -> LlamaConfig:
    return LlamaConfig(vocab_size=4096, hidden_size=192, intermediate_size=512, num_hidden_layers=3,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                       tie_word_embeddings=True)


def setup_for(device: str) -> Setup:
    if device == "cuda":
        return Setup(qwen25_05b_config(), batch_size=32, warmup_steps=3, measured_steps=12, length_range=(120, 400),
                     length_median=190, eval_examples=256, eval_naive_examples=24, eval_batch_size=64,
                     max_new_tokens=128, dtype=torch.bfloat16)
    return Setup(small_llama_config(), batch_size=8, warmup_steps=1, measured_steps=5, length_range=(30, 100),
                 length_median=48, eval_examples=32, eval_naive_examples=8, eval_batch_size=16,
                 max_new_tokens=32, dtype=torch.float32)


# ----------------------------------------------------------------------------------------- data
WORDS = ("apples pens boxes marbles cookies dollars books miles hours pages tickets students friends eggs cars "
         "coins stickers bags trees flowers cats dogs shirts candies cards bottles chairs").split()
NAMES = "Tom Sara James Maria Ali Chen Priya Lucas Emma Noah Olivia Ken".split()
FILLER = ("then so first next after that in total each every more less left remaining together altogether she "
          "he they has have had buys sells gives gets spends earns makes needs wants uses keeps").split()


def synthetic_example(rng: np.random.Generator, target_words: int) -> tuple[str, str, str]:
    """A GSM8K-like (question, rationale, answer) of about `target_words` words (a third question)."""
    name, thing = rng.choice(NAMES), rng.choice(WORDS)
    question_words, rationale_words = max(8, target_words // 3), max(8, target_words - target_words // 3)
    sentences, count = [], 0
    while count < question_words - 4:
        words = [str(rng.choice(FILLER)) for _ in range(int(rng.integers(4, 10)))]
        sentence = f"{name} {' '.join(words)} {int(rng.integers(2, 500))} {thing}."
        sentences.append(sentence)
        count += len(sentence.split())
    question = " ".join(sentences) + f" How many {thing} does {name} have?"
    steps, count, value = [], 0, int(rng.integers(2, 100))
    while count < rationale_words - 5:
        operand = int(rng.integers(2, 60))
        words = " ".join(str(rng.choice(FILLER)) for _ in range(int(rng.integers(3, 8))))
        new_value = value + operand
        steps.append(f"{name} {words} {operand} {thing}, so {value} + {operand} = {new_value}.")
        value = new_value
        count += len(steps[-1].split())
    return question, " ".join(steps), str(value)


def synthetic_data(n: int, setup: Setup, seed: int = 0) -> list[tuple[str, str, str]]:
    """`n` examples whose lengths follow GSM8K's prompt + rationale distribution (log-normal around the
    median, clipped to the range), scaled to words (about 1.3 tokens per word with digits split)."""
    rng = np.random.default_rng(seed)
    low, high = setup.length_range
    tokens = np.clip(rng.lognormal(math.log(setup.length_median), 0.35, n), low, high)
    return [synthetic_example(rng, int(t / 1.3)) for t in tokens]


def train_sequences(data, seed: int = 0) -> list[TrainSequence]:
    """kpod's KPOD-loss sequences: target = rationale + answer sentence, token weights in (0, 1)."""

    def weights_for(index: int):
        def weight_fn(spans):
            return np.random.default_rng([seed, index]).uniform(0.05, 1.0, len(spans))
        return weight_fn

    return [TrainSequence(f"q{i}", question_prompt(q), f"{r} {answer_sentence(a)}", weights_for(i))
            for i, (q, r, a) in enumerate(data)]


# -------------------------------------------------------------------------------------- helpers
def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_memory(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None


def peak_flops(device: str) -> float | None:
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


class StepClock:
    """Real tokens and end time of every optimizer step; the rate skips the warm-up steps."""

    def __init__(self, device: str):
        self.device = device
        self.pending: list[torch.Tensor | int] = []
        self.steps: list[tuple[int, float]] = []
        self.start = time.perf_counter()

    def add_tokens(self, count) -> None:
        self.pending.append(count)

    def step_done(self) -> None:
        sync(self.device)
        tokens = int(sum(int(c) for c in self.pending))
        self.pending.clear()
        self.steps.append((tokens, time.perf_counter()))

    def tokens_per_s(self, warmup: int) -> float:
        if len(self.steps) <= warmup:
            raise RuntimeError(f"only {len(self.steps)} steps ran; need more than the {warmup} warm-up steps")
        begin = self.steps[warmup - 1][1] if warmup > 0 else self.start
        tokens = sum(t for t, _ in self.steps[warmup:])
        return tokens / (self.steps[-1][1] - begin)


def real_tokens(inputs: dict) -> torch.Tensor | int:
    mask = inputs.get("attention_mask")
    return mask.sum() if mask is not None else inputs["input_ids"].numel()


def load_student(model_dir: Path, device: str, lora: bool):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    if lora:
        from peft import get_peft_model
        model = get_peft_model(model, lora_config())
    return model


def lora_config():
    from peft import LoraConfig
    return LoraConfig(task_type="CAUSAL_LM", r=64, lora_alpha=128, lora_dropout=0.05, target_modules="all-linear")


def result(name: str, clock: StepClock, setup: Setup, device: str, flops_per_token: float, **extra) -> dict:
    rate = clock.tokens_per_s(setup.warmup_steps)
    peak = peak_flops(device)
    out = {"name": name, "tokens_per_s": round(rate, 1), "mfu": round(rate * flops_per_token / peak, 4) if peak else None,
           "peak_memory_gb": peak_memory_gb(device), "steps": len(clock.steps), **extra}
    print(f"[throughput] {name:<22} {rate:>10.1f} tokens/s  mfu {out['mfu']}  peak memory {out['peak_memory_gb']} GB",
          file=sys.stderr, flush=True)
    return out


# ------------------------------------------------------------------------------------- contenders
def run_plain(model_dir: Path, data, tokenizer, setup: Setup, device: str, flops: float, lora: bool = False) -> dict:
    """Shuffled batches padded to their longest example, the model's own loss, torch AdamW."""
    reset_memory(device)
    model = load_student(model_dir, device, lora)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    prompts = tokenizer([question_prompt(q) for q, _, _ in data])["input_ids"]
    targets = tokenizer([f" {r} {answer_sentence(a)}" for _, r, a in data], add_special_tokens=False)["input_ids"]
    rows = [(p, t + [tokenizer.eos_token_id]) for p, t in zip(prompts, targets)]
    order = np.random.default_rng(0).permutation(len(rows))
    clock = StepClock(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    for start in range(0, len(order), setup.batch_size):
        batch = [rows[i] for i in order[start:start + setup.batch_size]]
        width = max(len(p) + len(t) for p, t in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (p, t) in enumerate(batch):
            ids[row, :len(p) + len(t)] = torch.tensor(p + t)
            labels[row, len(p):len(p) + len(t)] = torch.tensor(t)
            mask[row, :len(p) + len(t)] = 1
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        with autocast:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clock.add_tokens(mask.sum())
        clock.step_done()
    out = result("plain", clock, setup, device, flops)
    del model, optimizer
    return out


def run_kpod(model_dir: Path, sequences, setup: Setup, device: str, flops: float, *, lora: bool = False,
             compile_body: bool = False) -> dict:
    """kpod's trainer with the KPOD loss (its defaults otherwise), timed by optimizer-step hooks."""
    reset_memory(device)
    with tempfile.TemporaryDirectory(prefix="kpod-bench-") as out:
        cfg = TrainConfig(student=str(model_dir), lr=1e-5, epochs=1, batch_size=setup.batch_size, max_length=1024,
                          report_to="none", lora=lora, compile=compile_body, log_every=10**6)
        trainer = Trainer(cfg, out)
        clock = StepClock(device)
        trainer.model.register_forward_pre_hook(
            lambda module, args, kwargs: clock.add_tokens(real_tokens(kwargs)), with_kwargs=True)
        torch_optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
        torch_optimizer.register_step_post_hook(lambda *_: clock.step_done())
        trainer.fit(StaticSource(sequences))
        name = "kpod" + ("_lora" if lora else "") + ("_compile" if compile_body else "")
        res = result(name, clock, setup, device, flops, config={"compile": compile_body, "lora": lora})
        del trainer
    return res


def run_trl(model_dir: Path, data, tokenizer, setup: Setup, device: str, flops: float, variant: str,
            lora: bool = False) -> dict:
    """TRL's SFTTrainer: `default` (its defaults), `padding_free` (no padding, no gradient
    checkpointing, flash attention when installed) or `packing` (best-fit packing, the same)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    reset_memory(device)
    clock = StepClock(device)

    class TimedSFTTrainer(SFTTrainer):
        def training_step(self, model, inputs, *args, **kwargs):
            clock.add_tokens(real_tokens(inputs))
            return super().training_step(model, inputs, *args, **kwargs)

    class StepEnd(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.step_done()

    options: dict = {}
    batch_size = setup.batch_size
    if variant != "default":
        options.update(gradient_checkpointing=False, padding_free=True, max_length=None)
    if variant == "packing":
        mean_tokens = np.mean([len(tokenizer(question_prompt(q) + f" {r} {answer_sentence(a)}")["input_ids"])
                               for q, r, a in data])
        options.update(packing=True, max_length=1024)
        batch_size = max(1, round(setup.batch_size * mean_tokens / 1024))
    model = load_student(model_dir, device, lora=False)
    if variant != "default" and device == "cuda" and _flash_attention():
        model.set_attn_implementation("flash_attention_2")
    dataset = Dataset.from_list([{"prompt": question_prompt(q), "completion": f" {r} {answer_sentence(a)}"}
                                 for q, r, a in data])
    steps = setup.warmup_steps + setup.measured_steps
    with tempfile.TemporaryDirectory(prefix="trl-bench-") as out:
        args = SFTConfig(output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=1e-5,
                         bf16=device == "cuda", logging_steps=10**6, save_strategy="no", report_to="none",
                         use_cpu=device == "cpu", dataloader_num_workers=0, seed=0, **options)
        trainer = TimedSFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                  peft_config=lora_config() if lora else None, callbacks=[StepEnd()])
        trainer.train()
    name = "trl" + ("_lora" if lora else "") + ("" if variant == "default" else f"_{variant}")
    res = result(name, clock, setup, device, flops, config={"batch_size": batch_size, **options})
    del trainer, model
    return res


def _flash_attention() -> bool:
    import importlib.util
    return importlib.util.find_spec("flash_attn") is not None


def run_generation(model_dir: Path, data, setup: Setup, device: str) -> dict:
    """Examples/s of kpod's batched generate, of one-at-a-time model.generate, and of vLLM."""
    reset_memory(device)
    tokenizer = load_tokenizer(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=setup.dtype).to(device).eval()
    prompts = [question_prompt(q) for q, _, _ in data[: setup.eval_examples]]
    generate(model, tokenizer, prompts[: setup.eval_batch_size], max_new_tokens=4, batch_size=setup.eval_batch_size)
    sync(device)
    start = time.perf_counter()
    generate(model, tokenizer, prompts, max_new_tokens=setup.max_new_tokens,
                       batch_size=setup.eval_batch_size)
    sync(device)
    batched_rate = len(prompts) / (time.perf_counter() - start)
    naive_prompts = prompts[: setup.eval_naive_examples]
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in naive_prompts:
            inputs = tokenizer(prompt, return_tensors="pt").to(device)
            model.generate(**inputs, max_new_tokens=setup.max_new_tokens, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)
    sync(device)
    naive_rate = len(naive_prompts) / (time.perf_counter() - start)
    out = {"eval_examples_per_s": round(batched_rate, 3), "eval_naive_examples_per_s": round(naive_rate, 3),
           "eval_speedup": round(batched_rate / naive_rate, 2), "eval_examples": len(prompts),
           "eval_naive_examples": len(naive_prompts), "eval_batch_size": setup.eval_batch_size,
           "eval_max_new_tokens": setup.max_new_tokens, "vllm_examples_per_s": None}
    del model
    reset_memory(device)
    if vllm_available():
        start = time.perf_counter()
        generate_vllm(str(model_dir), prompts, max_new_tokens=setup.max_new_tokens, dtype="bfloat16")
        out["vllm_examples_per_s"] = round(len(prompts) / (time.perf_counter() - start), 3)
        out["vllm_note"] = "includes engine start-up"
    return out


# ------------------------------------------------------------------------------------------ main
def build_model_dir(config, tokenizer, out: Path, device: str, dtype: torch.dtype) -> tuple[Path, int]:
    """Random weights from `config`, saved with the tokenizer. Embedding rows beyond the tokenizer's
    vocabulary are zeroed so that greedy decoding never picks a token the tokenizer cannot write."""
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    with torch.no_grad():
        for emb in {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
            emb.weight[len(tokenizer):] = 0
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return out, params


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-trl", action="store_true", help="leave TRL out even when installed")
    parser.add_argument("--lora", action=argparse.BooleanOptionalAction, default=None,
                        help="also the LoRA comparison (default: on for cuda; on cpu it uses the small model)")
    parser.add_argument("--lora-layers", type=int, default=28, help="layers of the 7B-class LoRA shape (28 = Qwen2.5-7B)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also kpod with --compile true (default: on for cuda)")
    args = parser.parse_args(argv)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    setup = setup_for(device)
    run_lora = args.lora if args.lora is not None else device == "cuda"
    run_compile = args.compile if args.compile is not None else device == "cuda"
    try:
        import trl
        trl_version = None if args.skip_trl else trl.__version__
    except ImportError:
        trl_version = None
    torch.manual_seed(0)

    steps = setup.warmup_steps + setup.measured_steps
    data = synthetic_data(max(steps * setup.batch_size, setup.eval_examples), setup)
    train_data = data[: steps * setup.batch_size]
    with tempfile.TemporaryDirectory(prefix="kpod-throughput-") as tmp:
        corpus = [f"{question_prompt(q)} {r} {answer_sentence(a)}" for q, r, a in data]
        tokenizer = train_tokenizer(corpus, vocab_size=2048)
        model_dir, params = build_model_dir(setup.config, tokenizer, Path(tmp) / "model", device, setup.dtype)
        tokenizer = load_tokenizer(str(model_dir))
        lengths = [len(tokenizer(c)["input_ids"]) + 1 for c in corpus[: len(train_data)]]
        flops = 6 * params
        report: dict = {
            "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.processor() or platform.machine()}, "
                                                                            f"{torch.get_num_threads()} threads)",
            "torch": torch.__version__, "trl_version": trl_version,
            "model": {"shape": type(setup.config).__name__.replace("Config", ""), "parameters": params,
                      "hidden": setup.config.hidden_size, "layers": setup.config.num_hidden_layers,
                      "vocab": setup.config.vocab_size},
            "data": {"sequences": len(train_data), "tokens_mean": round(float(np.mean(lengths)), 1),
                     "tokens_min": min(lengths), "tokens_max": max(lengths)},
            "batch_size": setup.batch_size, "warmup_steps": setup.warmup_steps, "precision":
                "fp32 weights + bf16 autocast" if device == "cuda" else "fp32",
        }
        sequences = train_sequences(train_data)
        runs = [run_plain(model_dir, train_data, tokenizer, setup, device, flops),
                run_kpod(model_dir, sequences, setup, device, flops)]
        if run_compile:
            runs.append(run_kpod(model_dir, sequences, setup, device, flops, compile_body=True))
        if trl_version:
            for variant in ("default", "padding_free", "packing"):
                runs.append(run_trl(model_dir, train_data, tokenizer, setup, device, flops, variant))
        by_name = {r["name"]: r for r in runs}
        kpod_best = max((r for r in runs if r["name"].startswith("kpod")), key=lambda r: r["tokens_per_s"])
        trl_fast = max((r for r in runs if r["name"].startswith("trl_")), key=lambda r: r["tokens_per_s"], default=None)
        report.update({
            "kpod_tokens_per_s": kpod_best["tokens_per_s"], "kpod_config": kpod_best["name"],
            "kpod_default_tokens_per_s": by_name["kpod"]["tokens_per_s"],
            "trl_tokens_per_s": by_name["trl"]["tokens_per_s"] if "trl" in by_name else None,
            "trl_fast_tokens_per_s": trl_fast["tokens_per_s"] if trl_fast else None,
            "trl_fast_config": trl_fast["name"] if trl_fast else None,
            "plain_tokens_per_s": by_name["plain"]["tokens_per_s"],
            "mfu": kpod_best["mfu"], "kpod_peak_memory_gb": kpod_best["peak_memory_gb"],
            "speedup_vs_trl": round(kpod_best["tokens_per_s"] / by_name["trl"]["tokens_per_s"], 2) if "trl" in by_name else None,
            "speedup_vs_plain": round(kpod_best["tokens_per_s"] / by_name["plain"]["tokens_per_s"], 2),
            "runs": runs,
        })
        report.update(run_generation(model_dir, data, setup, device))
        print(f"[throughput] generation: kpod {report['eval_examples_per_s']} ex/s, one at a time "
              f"{report['eval_naive_examples_per_s']} ex/s ({report['eval_speedup']}x), vllm "
              f"{report['vllm_examples_per_s']}", file=sys.stderr)
        if run_lora:
            report["lora"] = run_lora_comparison(args, setup, tokenizer, train_data, sequences, Path(tmp), device,
                                                 trl_version)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / f"throughput_{device}.json", report)
    print(json.dumps({k: v for k, v in report.items() if k not in ("runs", "lora")} | {
        "lora": {k: v for k, v in report["lora"].items() if k != "runs"} if report.get("lora") else None}))
    return report


def run_lora_comparison(args, setup: Setup, tokenizer, data, sequences, tmp: Path, device: str,
                        trl_version: str | None) -> dict:
    """kpod with LoRA against TRL with peft (defaults and padding-free) on a 7B-class shape (cuda) or
    the small model (cpu), batch size a quarter of the full fine-tuning one."""
    config = qwen25_7b_config(args.lora_layers) if device == "cuda" else setup.config
    lora_setup = Setup(**{**setup.__dict__, "batch_size": max(2, setup.batch_size // 4)})
    model_dir, params = build_model_dir(config, tokenizer, tmp / "lora-model", device, torch.bfloat16
                                        if device == "cuda" else torch.float32)
    flops = 4 * params
    reset_memory(device)
    steps = lora_setup.warmup_steps + lora_setup.measured_steps
    data, sequences = data[: steps * lora_setup.batch_size], sequences[: steps * lora_setup.batch_size]
    runs = [run_kpod(model_dir, sequences, lora_setup, device, flops, lora=True)]
    if trl_version:
        for variant in ("default", "padding_free"):
            runs.append(run_trl(model_dir, data, tokenizer, lora_setup, device, flops, variant, lora=True))
    by_name = {r["name"]: r for r in runs}
    return {"shape": f"Qwen2.5-7B dims, {config.num_hidden_layers} layers" if device == "cuda" else "small Llama",
            "parameters": params, "batch_size": lora_setup.batch_size,
            "kpod_tokens_per_s": by_name["kpod_lora"]["tokens_per_s"], "mfu": by_name["kpod_lora"]["mfu"],
            "trl_tokens_per_s": by_name["trl_lora"]["tokens_per_s"] if "trl_lora" in by_name else None,
            "trl_fast_tokens_per_s": by_name["trl_lora_padding_free"]["tokens_per_s"]
            if "trl_lora_padding_free" in by_name else None,
            "runs": runs}


if __name__ == "__main__":
    main()
