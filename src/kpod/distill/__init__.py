"""Student distillation (KPOD Eq. 14-15): stage prompts and targets (encoding), the weighted loss
(loss), length-grouped batches (data), what each epoch trains on (source), the accelerate trainer
(trainer) and the `kpod train` command (train). docs/trainer.md describes the API KPDD reuses."""
