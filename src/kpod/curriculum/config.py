"""Settings of `kpod schedule` and of the curriculum a trainer follows (KPOD Sec. 3.4, Appendix A)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kpod.config import field_help
from kpod.errors import ConfigError

METHODS = ("kpod", "none", "acl", "spl", "icl")


@dataclass
class ScheduleConfig:
    """The paper's defaults (Appendix A): p = 0.5, C0 = 0.3 B, T = half the epochs, beta = 12, K = 5."""

    method: Literal["kpod", "none", "acl", "spl", "icl"] = field_help(
        "kpod: the in-rationale progressive schedule (Eq. 8-13); none: full rationales every epoch; "
        "acl / spl / icl: the curriculum alternatives of the ablation (Table 2)", "kpod")
    epochs: int = field_help("training epochs; one stage per epoch", 20)
    T: int | None = field_help("stage at which D(T) = B and every question outputs its whole rationale "
                               "(default: half the epochs)", None)
    p: float = field_help("growth exponent of the budget D(t) (Eq. 10)", 0.5)
    c0: float = field_help("initial budget C0 as a fraction of the total difficulty B (Eq. 10)", 0.3)
    beta: float = field_help("weight of the diversity term (Eq. 12); 0 is the KPOD-w.o.-div ablation", 12.0)
    clusters: int = field_help("K of the K-means question clustering", 5)
    delta_s: int = field_help("steps handed from input to output when a question is selected (Eq. 11)", 1)
    start: Literal["last_step", "selected"] = field_help(
        "c_i(0): last_step = n_i - delta_s (every question first outputs its last delta_s steps); "
        "selected = start from c_i = n_i and select stage 0 under the budget C0 like any other stage",
        "last_step")
    selection: Literal["greedy", "greedy_max", "ftgp"] = field_help(
        "solver of Eq. 13: density greedy, Greedy+Max (exact 1/2 guarantee) or the paper's threshold "
        "greedy FTGP", "greedy_max")
    eps: float = field_help("FTGP threshold decay (1 - eps) and grid ratio (1 + eps)", 0.1)
    temperature: float = field_help("softmax temperature of the step-difficulty weights (Eq. 8; 1 = paper)", 1.0)
    uniform_weights: bool = field_help("uniform token weights in Eq. 8 (the KPOD-w.o.-sig-dif ablation); "
                                       "implied when no --weights directory is given", False)
    embedding: Literal["student", "glove", "tfidf", "sentence-transformers"] = field_help(
        "question embedding for the clustering: the student's averaged input embeddings, a GloVe text "
        "file, TF-IDF, or a sentence-transformers model", "student")
    embedding_path: str | None = field_help("GloVe text file, or sentence-transformers model name or path", None)
    batch_size: int = field_help("rationales per forward pass of the step-difficulty pass", 16)
    max_per_question: int | None = field_help("use at most this many rationales per question", None)
    acl_mix: float = field_help("ACL: weight of the student's current loss in the re-estimated difficulty", 0.5)
    icl_start: float = field_help("ICL: fraction of rationale tokens given as input at epoch 0", 0.75)
    seed: int = field_help("seed of the K-means clustering", 0)
    plots: bool = field_help("write the PNG plots beside the schedule file", True)

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.T is None or 1 <= self.T <= self.epochs, "T must lie in [1, epochs]"),
            (self.p > 0, "p must be positive (Eq. 10)"),
            (0 <= self.c0 <= 1, "c0 is a fraction of B in [0, 1]"),
            (self.beta >= 0, "beta must be non-negative"),
            (self.clusters >= 1, "clusters must be at least 1"),
            (self.delta_s >= 1, "delta_s must be at least 1"),
            (0 < self.eps < 1, "eps must lie in (0, 1)"),
            (self.temperature > 0, "temperature must be positive"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (0 <= self.acl_mix <= 1, "acl_mix must lie in [0, 1]"),
            (0 <= self.icl_start < 1, "icl_start must lie in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"schedule: {message}")

    @property
    def stages_T(self) -> int:
        """T, defaulting to half the epochs (at least 1)."""
        return self.T if self.T is not None else max(1, self.epochs // 2)
