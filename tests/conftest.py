"""Shared fixtures: the benchmark data in ../shared/data and tiny local models built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KPOD_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KPOD_SHARED_DATA", REPO.parent / "shared" / "data"))

TINY_CORPUS = [
    "Q: Tom has 12 apples and buys 30 more. How many apples does he have?\n"
    "A: Let's think step by step. Tom starts with 12 apples. He buys 30 more, so 12 + 30 = 42. "
    "Therefore, the answer is 42.",
    "Q: A box holds 6 pens. How many pens are in 7 boxes?\n"
    "A: Let's think step by step. Each box holds 6 pens. So 7 * 6 = 42 pens. Therefore, the answer is 42.",
    "Q: Sara had $150.50 and spent $20. How much is left?\n"
    "A: Let's think step by step. She had $150.50. Then 150.50 - 20 = 130.50. Therefore, the answer is 130.5.",
    "Q: Which is a fruit? Answer Choices:\nA. apple\nB. car\n"
    "A: Let's think step by step. An apple grows on trees. Therefore, the answer is A.",
]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The raw benchmark files (../shared/data beside the repository, or $KPOD_SHARED_DATA)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Randomly initialized tiny Llama- and T5-style models with a trained tokenizer, saved with
    save_pretrained: {"causal": dir, "seq2seq": dir}."""
    from kpod.models.local import ModelSize, build_local_models

    out = tmp_path_factory.mktemp("tiny_models")
    return build_local_models(TINY_CORPUS * 4, out, ModelSize(hidden=32, layers=1, heads=2, intermediate=64,
                                                                max_positions=1024), vocab_size=320)


def fit_causal(model_dir, texts: list[str], steps: int = 150):
    """Load a tiny causal model and fit it to `texts` (full-batch AdamW) so that it reproduces them."""
    import torch

    from kpod.models.loading import load_model

    loaded = load_model(str(model_dir))
    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=1e-2)
    for _ in range(steps):
        loaded.model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return loaded
