"""kpod: distill chain-of-thought reasoning from a teacher LLM into a small student."""

__version__ = "0.1.0"
