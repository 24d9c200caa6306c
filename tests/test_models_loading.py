import pytest
import torch

from kpod.errors import KpodError
from kpod.models.loading import is_seq2seq, load_model


def test_local_models_load_like_hub_names(tiny_models):
    causal, seq2seq = load_model(str(tiny_models["causal"])), load_model(str(tiny_models["seq2seq"]))
    assert not causal.is_seq2seq and seq2seq.is_seq2seq
    assert causal.tokenizer.is_fast and causal.tokenizer.pad_token is not None


def test_lora_adapter_directory_loads_merged(tiny_models, tmp_path):
    from peft import LoraConfig, get_peft_model

    base = load_model(str(tiny_models["causal"]))
    peft_model = get_peft_model(base.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    assert not is_seq2seq(str(tmp_path / "adapter"))
    merged = load_model(str(tmp_path / "adapter"))
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        assert torch.allclose(merged.model(ids).logits, peft_model(ids).logits, atol=1e-5)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(KpodError, match="cannot load"):
        load_model(str(tmp_path / "nope"))
