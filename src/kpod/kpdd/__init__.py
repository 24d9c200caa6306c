"""KPDD (Zhu et al. 2024): key-point-driven distillation with CoT and Program-of-Thought solutions,
and the sandbox that runs model-written programs. See docs/kpdd.md."""
