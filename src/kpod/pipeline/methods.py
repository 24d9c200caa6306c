"""The methods `kpod run --method` trains: KPOD, its Table 2 variants and the baselines.

Each method is a set of overrides on the run's config, so every comparison goes through the same
stages and the same trainer and differs only in what the method names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kpod.errors import ConfigError


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    overrides: dict = field(default_factory=dict)
    uses_weights: bool = True
    uses_schedule: bool = True


_PLAIN = {"use_token_weights": False, "progressive": False}

METHODS = {m.name: m for m in [
    Method("cotd", "plain CoT distillation: uniform token weights, full rationale, one rationale per question",
           {"train": {**_PLAIN, "rationales_per_question": 1}}, uses_weights=False, uses_schedule=False),
    Method("cotd-multi", "CoT distillation on several teacher rationales per question (as SCoTD does)",
           {"train": {**_PLAIN, "rationales_per_question": 4}}, uses_weights=False, uses_schedule=False),
    Method("kpod", "KPOD: token weights in the loss (Eq. 15) and the progressive schedule (Eq. 8-13)"),
    Method("kpod-wo-sig", "KPOD without token significance in the loss (uniform weights in Eq. 15)",
           {"train": {"use_token_weights": False}}),
    Method("kpod-wo-sig-dif", "KPOD without token significance in the step difficulty (uniform weights in Eq. 8)",
           {"schedule": {"uniform_weights": True}}),
    Method("kpod-wo-prog", "KPOD without the progressive schedule (c_i = 0 throughout)",
           {"train": {"progressive": False}}, uses_schedule=False),
    Method("kpod-wo-div", "KPOD without the diversity term (beta = 0 in Eq. 12)", {"schedule": {"beta": 0.0}}),
    Method("kpod-acl", "KPOD with Adaptive CL (Kong et al. 2021) instead of the progressive schedule",
           {"schedule": {"method": "acl"}}),
    Method("kpod-spl", "KPOD with self-paced learning (Wan et al. 2020) instead of the progressive schedule",
           {"schedule": {"method": "spl"}}),
    Method("kpod-icl", "KPOD with in-sample curriculum (Jia et al. 2023) instead of the progressive schedule",
           {"schedule": {"method": "icl"}}),
]}

TABLE2 = ["cotd", "kpod", "kpod-wo-sig", "kpod-wo-sig-dif", "kpod-wo-prog", "kpod-wo-div", "kpod-acl", "kpod-spl",
          "kpod-icl"]


def get_method(name: str) -> Method:
    if name not in METHODS:
        import difflib

        close = difflib.get_close_matches(name, list(METHODS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown method '{name}'{hint} (known: {', '.join(METHODS)})")
    return METHODS[name]
