"""`kpod run CONFIG.yaml [--section.key value ...]`: every stage of a distillation run in one directory.

    kpod run configs/testbed.yaml --methods cotd,kpod --seeds 0,1,2
    kpod run configs/testbed.yaml --grid weigh.alpha=0.1,0.5,1.0 --grid schedule.beta=0,12

Stages (data, base model, weigh, schedule, train, eval) are content-addressed (kpod.pipeline.stages):
an unchanged stage is skipped, a changed one runs in a fresh directory, an interrupted one resumes.
Each stage runs the same command a user would run by hand (`kpod weigh`, `kpod schedule`,
`kpod train`), with the flags taken from the config's section of the same name.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from kpod.config import from_dict, load_config, merge, parse_overrides, to_dict
from kpod.errors import ConfigError, KpodError
from kpod.io import write_json, write_text
from kpod.pipeline.config import RunConfig
from kpod.pipeline.methods import METHODS, Method, get_method
from kpod.pipeline.results import collect_results
from kpod.pipeline.stages import Stage, file_digest, run_stage

ACCEPTS_OVERRIDES = True
# Settings added after stages of their kind were first cached: at these values a stage's key stays
# what it was before the setting existed, so finished stages remain valid.
KEY_NEUTRAL = {"loss_normalizer": "tokens"}
COTD_PREDICTOR = "cotd"  # weigh.predictor: the run's plain CoT-distilled student (seed weigh.seed) reads rationales


def settings_key(section) -> dict:
    """A config section as it enters a stage key (`KEY_NEUTRAL` values left out)."""
    return {k: v for k, v in to_dict(section).items() if KEY_NEUTRAL.get(k, object()) != v}


def config_flags(section) -> list[str]:
    """A config section as the command-line flags of the command that owns it."""
    flags = []
    for key, value in to_dict(section).items():
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value))
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


def run_command(argv: list[str], launcher: str = "") -> None:
    """Run a kpod command in this process, or under `launcher` (e.g. accelerate launch) in its own."""
    from kpod.cli import main

    if launcher:
        code = subprocess.call([*shlex.split(launcher), "-m", "kpod.cli", *argv])
    else:
        code = main(argv)
    if code:
        raise KpodError(f"`kpod {' '.join(argv[:1])}` failed with exit code {code}")


@dataclass
class Variant:
    """One trained student: a method at one grid point and seed."""

    label: str
    method: Method
    seed: int
    cfg: RunConfig


class Pipeline:
    """The stages of one run directory. Shared upstream stages run once for all variants."""

    def __init__(self, cfg: RunConfig, run_dir: Path, log=print):
        self.cfg, self.run_dir, self.log = cfg, Path(run_dir), log

    def stage(self, name: str, key: dict, work) -> Path:
        return run_stage(self.run_dir, Stage(name, key, work), log=self.log)

    def ref(self, path: str | Path) -> str:
        """A path as it enters a stage key: relative inside this run's stages, as given otherwise, so
        that the same stages hash alike in any run directory."""
        stages = (self.run_dir / "stages").resolve()
        resolved = Path(path).resolve()
        return str(resolved.relative_to(stages)) if resolved.is_relative_to(stages) else str(path)

    # -- data ---------------------------------------------------------------------------------------
    def data(self, cfg: RunConfig) -> Path:
        """DIR/train.jsonl (with teacher rationales), dev.jsonl and one file per evaluation set."""
        data = cfg.data
        key = {"data": to_dict(data)}  # every data setting, dev_limit included
        for path in [data.dataset, *data.rationales, data.data_dir]:
            if path and Path(path).exists():
                key[f"digest:{path}"] = file_digest(path)
        teacher_file = None
        if data.rationales == ["teach"]:
            teacher_file = self.teach(cfg) / "train.jsonl"
            key["teach"] = teacher_file.parent.name

        def work(out: Path, resume: bool) -> None:
            from kpod.pipeline.data_stage import prepare_data

            prepare_data(data, out, log=self.log, teacher_file=teacher_file)

        return self.stage("data", key, work)

    def teach(self, cfg: RunConfig) -> Path:
        """Teacher rationales for the train split (`kpod teach`, then `kpod teach filter`). A run
        with failed requests stops here; rerunning retries only what failed."""
        if cfg.teach is None:
            raise ConfigError("data.rationales is [teach] but the config has no `teach` section")
        teach = copy.deepcopy(cfg.teach)
        teach.dataset, teach.split, teach.data_dir = cfg.data.dataset, "train", cfg.data.data_dir
        key = {"teach": to_dict(teach), "samples": cfg.teach_samples}

        def work(out: Path, resume: bool) -> None:
            teach.out = out / "records.jsonl"
            run_command(["teach", *config_flags(teach)])
            run_command(["teach", "filter", "--records", str(teach.out), "--out", str(out / "train.jsonl"),
                         "--samples", str(cfg.teach_samples), "--report", str(out / "filter_report.json")])

        return self.stage("teach", key, work)

    def student(self, cfg: RunConfig, data_dir: Path) -> str:
        if cfg.student != "base":
            return cfg.student
        key = {"data": data_dir.name, "base_model": to_dict(cfg.base_model)}

        def work(out: Path, resume: bool) -> None:
            from kpod.models.pretrain import build_base_models

            build_base_models(data_dir, out, cfg.base_model)

        return str(self.stage("base", key, work) / "causal")

    # -- KPOD stages --------------------------------------------------------------------------------
    def weights(self, cfg: RunConfig, data_dir: Path, student: str) -> Path:
        weigh = copy.deepcopy(cfg.weigh)
        key = {"data": data_dir.name, "student": self.ref(student), "weigh": to_dict(weigh)}
        if weigh.predictor == COTD_PREDICTOR:
            reader = self.train(Variant(COTD_PREDICTOR, get_method("cotd"), weigh.seed,
                                        resolve(cfg, get_method("cotd"))), data_dir, student, None, None)
            weigh.predictor, key["predictor"] = str(reader / "final"), reader.name
        return self.stage("weigh", key, lambda out, resume: run_command(
            ["weigh", "--data", str(data_dir / "train.jsonl"), "--student", student, "--out", str(out),
             *config_flags(weigh)]))

    def schedule(self, cfg: RunConfig, data_dir: Path, student: str, weights: Path) -> Path:
        schedule = copy.deepcopy(cfg.schedule)
        schedule.epochs = cfg.train.epochs
        key = {"data": data_dir.name, "student": self.ref(student), "weights": weights.name,
               "schedule": to_dict(schedule)}
        return self.stage("schedule", key, lambda out, resume: run_command(
            ["schedule", "--data", str(data_dir / "train.jsonl"), "--weights", str(weights), "--student", student,
             "--out", str(out / "schedule.json"), *config_flags(schedule)])) / "schedule.json"

    # -- student ------------------------------------------------------------------------------------
    def train(self, variant: Variant, data_dir: Path, student: str, weights: Path | None,
              schedule: Path | None) -> Path:
        cfg = variant.cfg
        train = copy.deepcopy(cfg.train)
        train.seed, train.student = variant.seed, student
        key = {"data": data_dir.name, "student": self.ref(student), "train": {**settings_key(train), "student": None},
               "weights": weights.name if weights else None,
               "schedule": schedule.parent.name if schedule else None}
        argv = ["train", "--data", str(data_dir / "train.jsonl"), *config_flags(train)]
        if (data_dir / "dev.jsonl").exists():
            argv += ["--dev", str(data_dir / "dev.jsonl")]
        if weights is not None:
            argv += ["--weights", str(weights)]
        if schedule is not None:
            argv += ["--schedule", str(schedule)]
        return self.stage("train", key, lambda out, resume: run_command(
            [*argv, "--out", str(out), *(["--resume"] if resume else [])], cfg.launcher))

    def evaluate(self, cfg: RunConfig, train_dir: Path, data_dir: Path, eval_set: str) -> Path:
        key = {"train": train_dir.name, "set": eval_set, "eval": to_dict(cfg.eval), "limit": cfg.data.eval_limit}

        def work(out: Path, resume: bool) -> None:
            from kpod.data.loaders import load_examples
            from kpod.eval.evaluate import evaluate

            examples = load_examples(str(data_dir / f"{eval_set.replace(':', '_')}.jsonl"))
            evaluate(str(train_dir / "final"), examples[: cfg.data.eval_limit], out,
                     max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size)

        return self.stage("eval", key, work)

    def run_variant(self, variant: Variant) -> dict:
        cfg = variant.cfg
        data_dir = self.data(cfg)
        student = self.student(cfg, data_dir)
        weights = schedule = None
        if variant.method.uses_weights or variant.method.uses_schedule:
            weights = self.weights(cfg, data_dir, student)
        if variant.method.uses_schedule:
            schedule = self.schedule(cfg, data_dir, student, weights)
        train_dir = self.train(variant, data_dir, student, weights, schedule)
        evals = {name: str(self.evaluate(cfg, train_dir, data_dir, name)) for name in cfg.data.eval_sets}
        return {"label": variant.label, "method": variant.method.name, "seed": variant.seed,
                "data": str(data_dir), "student": student, "weights": str(weights) if weights else None,
                "schedule": str(schedule) if schedule else None, "train": str(train_dir), "eval": evals}


def parse_grid(specs: list[str]) -> list[dict]:
    """["weigh.alpha=0.1,0.5", "schedule.beta=0,12"] -> one override mapping per grid point."""
    axes = []
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"grid axis '{spec}' should look like section.key=V1,V2,...")
        key, values = spec.split("=", 1)
        axes.append([(key, v) for v in values.split(",")])
    return [dict(point) for point in itertools.product(*axes)] if axes else [{}]


def resolve(cfg: RunConfig, method: Method, overrides: dict | None = None) -> RunConfig:
    """The run's config with a method's overrides, then a grid point's, applied."""
    return from_dict(RunConfig, merge(merge(to_dict(cfg), method.overrides), overrides or {}))


def variants(cfg: RunConfig, grid: list[str]) -> list[Variant]:
    """Every (method, grid point, seed) of the run, each with its own resolved config."""
    out = []
    for point in parse_grid(grid):
        for name in cfg.methods:
            method = get_method(name)
            resolved = resolve(cfg, method, parse_overrides([f"{k}={v}" for k, v in point.items()]))
            suffix = ",".join(f"{k.split('.')[-1]}={v}" for k, v in point.items())
            label = f"{name}[{suffix}]" if suffix else name
            out += [Variant(label, method, seed, resolved) for seed in cfg.seeds]
    return out


def run(cfg: RunConfig, run_dir: Path, grid: list[str] | None = None, log=print) -> dict:
    """Run every variant, then write RUN/index.json, RUN/metrics.json and RUN/report.html."""
    from kpod.report.build import build_report

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    pipeline = Pipeline(cfg, run_dir, log)
    todo = variants(cfg, grid or [])
    runs = []
    for number, variant in enumerate(todo, start=1):
        log(f"[kpod] === {variant.label} seed {variant.seed} ({number}/{len(todo)}) ===")
        runs.append(pipeline.run_variant(variant))
    write_json(run_dir / "index.json", {"name": cfg.name, "grid": grid or [], "runs": runs})
    metrics = collect_results(run_dir)
    build_report(run_dir)
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config (default: the embedded testbed)")
    parser.add_argument("--out", help="run directory (default: runs/<name>)")
    parser.add_argument("--methods", help="comma-separated methods, overriding the config's `methods`")
    parser.add_argument("--method", dest="methods", help="alias of --methods")
    parser.add_argument("--seeds", help="comma-separated seeds, overriding the config's `seeds`")
    parser.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                        help="sweep a setting (repeat for a full grid), e.g. --grid weigh.alpha=0.1,0.5,1")
    parser.add_argument("--list-methods", action="store_true", help="list the methods and exit")


def main(args: argparse.Namespace) -> int:
    from kpod.pipeline.results import format_table

    if args.list_methods:
        for method in METHODS.values():
            print(f"{method.name:18s} {method.description}")
        return 0
    overrides = list(args.overrides)
    if args.methods:
        overrides += ["--methods", f"[{args.methods}]"]
    if args.seeds:
        overrides += ["--seeds", f"[{args.seeds}]"]
    cfg = load_config(RunConfig, args.config, overrides)
    run_dir = Path(args.out or Path("runs") / cfg.name)
    metrics = run(cfg, run_dir, args.grid)
    print(format_table(metrics))
    print(f"report: {run_dir / 'report.html'}")
    return 0
