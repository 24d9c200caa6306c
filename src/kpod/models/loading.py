"""Load any Hugging Face model by hub name or local path: the one code path for students,
answer predictors and local teachers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from kpod.errors import KpodError


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    is_seq2seq: bool


def adapter_base(name_or_path: str) -> str | None:
    """The base model of a LoRA adapter directory (written by peft's save_pretrained), else None."""
    if not (Path(name_or_path) / "adapter_config.json").exists():
        return None
    from peft import PeftConfig

    return PeftConfig.from_pretrained(name_or_path).base_model_name_or_path


def is_seq2seq(name_or_path: str) -> bool:
    config = AutoConfig.from_pretrained(adapter_base(name_or_path) or name_or_path)
    return bool(getattr(config, "is_encoder_decoder", False))


def load_tokenizer(name_or_path: str, *, padding_side: str = "right"):
    """A fast tokenizer (offset mappings are needed everywhere) with a pad token."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True)
    except OSError as err:
        raise KpodError(f"cannot load tokenizer '{name_or_path}': {err}") from None
    if not tokenizer.is_fast:
        raise KpodError(f"'{name_or_path}' has no fast tokenizer; kpod needs offset mappings")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_model(name_or_path: str, *, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None,
               padding_side: str = "right") -> LoadedModel:
    """Load model and tokenizer from a hub name or a directory written by `save_pretrained`.

    A LoRA adapter directory loads its base model with the adapter merged in."""
    base = adapter_base(name_or_path)
    try:
        seq2seq = is_seq2seq(name_or_path)
        auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
        model = auto.from_pretrained(base or name_or_path, dtype=dtype or "auto")
        if base is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, name_or_path).merge_and_unload()
    except (OSError, ValueError) as err:
        raise KpodError(f"cannot load model '{name_or_path}': {err}") from None
    has_tokenizer = base is None or (Path(name_or_path) / "tokenizer_config.json").exists()
    tokenizer = load_tokenizer(name_or_path if has_tokenizer else base, padding_side=padding_side)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if device is not None:
        model.to(device)
    return LoadedModel(model, tokenizer, seq2seq)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
