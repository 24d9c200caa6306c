"""The `kpod` command. Each command lives in its own module, imported only when it runs.

A command module defines `add_arguments(parser)` and `main(args) -> int | None`; its docstring's
first line is the command's help. Commands are matched on the longest prefix of the arguments, so
`kpod teach filter ...` and `kpod teach ...` are two commands. A module that sets
`ACCEPTS_OVERRIDES = True` receives unrecognized `--section.key value` options in `args.overrides`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kpod.errors import KpodError

COMMANDS: dict[str, tuple[str, str]] = {
    "data stats": ("kpod.data.stats", "split and rationale-matching counts of a data set"),
    "data synth": ("kpod.data.synth", "write the synthetic reasoning testbed"),
    "base-model": ("kpod.models.pretrain", "train the testbed's tokenizer and base students"),
    "teach": ("kpod.teacher.teach", "generate teacher rationales (OpenAI-compatible endpoint or local model)"),
    "teach filter": ("kpod.teacher.filter", "keep correct teacher rationales"),
    "serve": ("kpod.teacher.serve", "serve a local model behind an OpenAI-compatible HTTP API"),
    "weigh": ("kpod.weighting.weigh", "learn token significance weights by mask learning (Eq. 2-7)"),
    "schedule": ("kpod.curriculum.schedule", "step difficulty and the progressive schedule (Eq. 8-13)"),
    "train": ("kpod.distill.train", "distill rationales into a student (Eq. 14-15)"),
    "eval": ("kpod.eval.evaluate", "evaluate a student's accuracy"),
    "kpdd": ("kpod.kpdd.commands", "key-point-driven distillation (KPDD-CoT, KPDD-PoT)"),
    "sandbox run": ("kpod.kpdd.sandbox", "run one program in the PoT sandbox"),
    "run": ("kpod.pipeline.run", "run a whole pipeline from a config, skipping finished stages"),
    "compare": ("kpod.pipeline.compare", "compare the metrics of several runs"),
    "demo": ("kpod.pipeline.demo", "the embedded default: testbed, KPOD against plain CoT distillation"),
    "report": ("kpod.report.build", "write the HTML report of a run directory"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: kpod COMMAND [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `kpod COMMAND --help` for a command's options."]
    return "\n".join(lines)


def split_overrides(argv: list[str], known: set[str]) -> tuple[list[str], list[str]]:
    """Separate `--section.key VALUE` / `--key=VALUE` config overrides from a command's own options."""
    own, overrides = [], []
    i = 0
    while i < len(argv):
        token = argv[i]
        flag = token.split("=", 1)[0]
        if token.startswith("--") and flag not in known:
            takes_value = "=" not in token and i + 1 < len(argv) and not argv[i + 1].startswith("--")
            overrides += argv[i:i + 1 + takes_value]
            i += 1 + takes_value
        else:
            own.append(token)
            i += 1
    return own, overrides


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    matches = [name for name in COMMANDS if argv[: len(name.split())] == name.split()]
    if not matches:
        print(_usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = max(matches, key=lambda n: len(n.split()))
    module_name, summary = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"kpod {name}", description=module.__doc__ or summary,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    rest = argv[len(name.split()):]
    if getattr(module, "ACCEPTS_OVERRIDES", False):
        rest, overrides = split_overrides(rest, set(parser._option_string_actions))
        args = parser.parse_args(rest)
        args.overrides = overrides
    else:
        args = parser.parse_args(rest)
    try:
        return int(module.main(args) or 0)
    except KpodError as err:
        print(f"kpod {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kpod {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
