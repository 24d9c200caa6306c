"""Teacher rationales: zero-shot CoT prompting (KPOD Sec. 3.1) of an OpenAI-compatible endpoint or a
local Hugging Face model, an append-only resumable record store, filtering, and `kpod serve`."""
