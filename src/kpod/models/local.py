"""Small local models, built from configs and saved with `save_pretrained`, for tests and the demo.

No model hub is reachable on the machines kpod is developed on, so tests and the demo train a
byte-level BPE tokenizer with the `tokenizers` library (every digit its own token, so numbers are
spelled digit by digit) and build small Llama-style causal and T5-style seq2seq models from
configs. Everything is written with `save_pretrained` and read back with `from_pretrained`, exactly
the path a hub name takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

SPECIAL_TOKENS = {"pad_token": "<pad>", "eos_token": "</s>", "bos_token": "<s>", "unk_token": "<unk>"}


@dataclass
class ModelSize:
    """Width and depth of a local model (the same numbers build the causal and seq2seq variants)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    max_positions: int = 512


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with single-digit tokens, wrapped as a fast HF tokenizer."""
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=2048, **SPECIAL_TOKENS)


def causal_model(tokenizer: PreTrainedTokenizerFast, size: ModelSize, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=size.hidden, intermediate_size=size.intermediate,
        num_hidden_layers=size.layers, num_attention_heads=size.heads, num_key_value_heads=size.heads,
        max_position_embeddings=size.max_positions, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def seq2seq_model(tokenizer: PreTrainedTokenizerFast, size: ModelSize, seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=size.hidden, d_ff=size.intermediate, d_kv=size.hidden // size.heads,
        num_layers=size.layers, num_decoder_layers=size.layers, num_heads=size.heads,
        feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5ForConditionalGeneration(config)


def save_local_model(model, tokenizer, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_local_models(texts: Iterable[str], out_dir: str | Path, size: ModelSize | None = None,
                       vocab_size: int = 512, seed: int = 0) -> dict[str, Path]:
    """Train a tokenizer on `texts`; write randomly initialized OUT/causal and OUT/seq2seq models."""
    size = size or ModelSize()
    tokenizer = train_tokenizer(texts, vocab_size)
    out_dir = Path(out_dir)
    return {
        "causal": save_local_model(causal_model(tokenizer, size, seed), tokenizer, out_dir / "causal"),
        "seq2seq": save_local_model(seq2seq_model(tokenizer, size, seed), tokenizer, out_dir / "seq2seq"),
    }
