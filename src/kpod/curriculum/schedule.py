"""Step difficulty and the progressive schedule (Eq. 8-13): `kpod schedule`.

    kpod schedule --data FILE --student DIR --epochs N --out FILE [--weights DIR] [options]

Computes every rationale's step difficulties with the pre-trained student (Eq. 8; uniform token
weights without --weights, the KPOD-w.o.-sig-dif ablation), clusters the questions, and schedules
c_i(t), the number of leading steps given as input, for every stage t = 0 .. N-1 (Eq. 9-13). Writes
FILE (JSON):

    {"epochs": N, "T": T, "stages": [{"t", "budget", "scheduled", "selected", "certificate_ratio", ...}],
     "input_steps": {key: [c_i(0), c_i(1), ...]}, "num_steps": {key: n_i},
     "method", "config", "clusters": {key: k}, "difficulties": {key: [d_1, ..., d_n]}}

and FILE's stem + ".png": D(t) against the scheduled difficulty, and the distribution of c_i(t).
With --method none|spl|icl no model pass is needed; acl stores the prior difficulties that the
trainer's feedback then re-estimates. `load_curriculum` turns a schedule file (or a method name) into
the Curriculum the trainer follows.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kpod.config import add_config_arguments, config_from_args, from_dict, to_dict
from kpod.curriculum.alternatives import (AdaptiveCurriculum, InSampleCurriculum, NoCurriculum,
                                          SelfPacedCurriculum, StaticCurriculum)
from kpod.curriculum.base import Curriculum
from kpod.curriculum.budget import StepTable
from kpod.curriculum.clustering import cluster_questions, question_embeddings
from kpod.curriculum.config import ScheduleConfig
from kpod.curriculum.difficulty import step_difficulties
from kpod.curriculum.progressive import progressive_schedule
from kpod.data.example import RationaleItem, rationale_items
from kpod.data.steps import split_steps
from kpod.errors import ConfigError, DataError, KpodError
from kpod.io import read_json, write_json

REQUIRED_KEYS = ("epochs", "T", "stages", "input_steps", "num_steps")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="examples with rationales (JSONL, directory or data set name)")
    parser.add_argument("--split", default="train", help="split of a directory or built-in data set (default: train)")
    parser.add_argument("--data-dir", help="raw files of a built-in data set")
    parser.add_argument("--weights", help="directory (or file) of weights.jsonl from `kpod weigh`; "
                                          "without it Eq. 8 uses uniform weights (KPOD-w.o.-sig-dif)")
    parser.add_argument("--student", help="pre-trained student (hub name or directory); needed by kpod and acl")
    parser.add_argument("--out", required=True, help="schedule file to write (JSON)")
    parser.add_argument("--device", help="torch device of the difficulty pass (default: cuda if available)")
    add_config_arguments(parser, ScheduleConfig)


def main(args: argparse.Namespace) -> int:
    from kpod.data.loaders import load_examples

    cfg = config_from_args(ScheduleConfig, args)
    items = rationale_items(load_examples(args.data, split=args.split, data_dir=args.data_dir), cfg.max_per_question)
    if not items:
        raise DataError("no rationales to schedule", path=args.data)
    schedule = build_schedule(items, cfg, student=args.student, weights=args.weights, device=args.device)
    write_schedule(args.out, schedule, plots=cfg.plots)
    stages = schedule["stages"]
    ratios = [s["certificate_ratio"] for s in stages if s.get("certificate_ratio") is not None]
    print(f"wrote {args.out}: {len(items)} rationales, {cfg.epochs} stages, T = {schedule['T']}"
          + (f", certificate ratio min {min(ratios):.4f}" if ratios else ""))
    return 0


def compute_difficulties(items: Sequence[RationaleItem], cfg: ScheduleConfig, student: str | None,
                         weights: str | None = None, device: str | None = None):
    """Step difficulties (Eq. 8) and K-means clusters of every rationale, from the student."""
    from kpod.models.loading import default_device, load_model
    from kpod.weighting.store import read_weights, weights_path

    if not student:
        raise KpodError(f"method '{cfg.method}' needs --student (the pre-trained student of Eq. 8)")
    model = load_model(student, device=device or default_device())
    token_weights = read_weights(weights) if weights and not cfg.uniform_weights else None
    difficulties = step_difficulties(model, list(items), token_weights, temperature=cfg.temperature,
                                     batch_size=cfg.batch_size,
                                     weights_path=weights_path(weights) if weights else None)
    return difficulties, question_clusters(items, cfg, model)


def question_clusters(items: Sequence[RationaleItem], cfg: ScheduleConfig, model=None) -> dict[str, int]:
    """Cluster each distinct question once; every rationale of a question shares its cluster."""
    questions: dict[str, str] = {}
    for item in items:
        questions.setdefault(item.example_id, item.question)
    ids = list(questions)
    embeddings = question_embeddings([questions[i] for i in ids], cfg.embedding, model=model, path=cfg.embedding_path)
    labels = dict(zip(ids, cluster_questions(embeddings, cfg.clusters, cfg.seed).tolist()))
    return {item.key: int(labels[item.example_id]) for item in items}


def build_schedule(items: Sequence[RationaleItem], cfg: ScheduleConfig, *, student: str | None = None,
                   weights: str | None = None, device: str | None = None,
                   difficulties: dict[str, list[float]] | None = None,
                   clusters: dict[str, int] | None = None) -> dict:
    """The schedule file's content. `difficulties` and `clusters` may be given instead of a student."""
    keys = [item.key for item in items]
    num_steps = {item.key: len(split_steps(item.rationale).steps) for item in items}
    T = cfg.stages_T
    base = {"epochs": cfg.epochs, "T": T, "method": cfg.method, "config": to_dict(cfg), "num_steps": num_steps}
    if cfg.method not in ("kpod", "acl"):
        zeros = [0] * cfg.epochs
        stages = [{"t": t, "budget": None, "scheduled": None, "selected": 0, "certificate_ratio": None}
                  for t in range(cfg.epochs)]
        return {**base, "stages": stages, "input_steps": {key: zeros for key in keys}}
    if difficulties is None or clusters is None:
        difficulties, clusters = compute_difficulties(items, cfg, student, weights, device)
    table = StepTable.from_lists(keys, [difficulties[key] for key in keys])
    labels = np.array([clusters[key] for key in keys], dtype=np.int64)
    steps, stages = progressive_schedule(table, labels, cfg)
    return {**base, "stages": stages, "input_steps": dict(zip(keys, steps.tolist())),
            "clusters": {key: int(k) for key, k in zip(keys, labels)},
            "difficulties": {key: [round(float(d), 6) for d in difficulties[key]] for key in keys}}


def write_schedule(path: str | Path, schedule: dict, plots: bool = True) -> None:
    write_json(path, schedule)
    if plots and schedule.get("difficulties"):
        plot_schedule(schedule, Path(path).with_suffix(".png"))


def plot_schedule(schedule: dict, path: str | Path) -> None:
    """Two panels: D(t) against the difficulty actually scheduled, and the distribution of c_i(t)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kpod.io import atomic_open

    stages = schedule["stages"]
    t = [s["t"] for s in stages]
    steps = np.array(list(schedule["input_steps"].values()), dtype=np.int64).reshape(-1, len(stages))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(t, [s["budget"] for s in stages], marker="o", label="budget D(t) (Eq. 10)")
    left.plot(t, [s["scheduled"] for s in stages], marker="s", label="scheduled difficulty sum_i h_i (Eq. 9)")
    left.axvline(schedule["T"], color="grey", linestyle=":", label="T")
    left.set_xlabel("stage t (epoch)")
    left.set_ylabel("difficulty (nats)")
    left.legend()
    top = 5
    bottom = np.zeros(len(stages))
    for c in range(top + 1):
        share = (steps >= c).mean(axis=0) if c == top else (steps == c).mean(axis=0)
        right.bar(t, share, bottom=bottom, label=f"c_i = {c}" if c < top else f"c_i >= {top}")
        bottom += share
    right.set_xlabel("stage t (epoch)")
    right.set_ylabel("fraction of rationales")
    right.set_title("input steps c_i(t)")
    right.legend(fontsize="small")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def read_schedule(path: str | Path) -> dict:
    """Read and check a schedule file (the keys of the output contract)."""
    schedule = read_json(path)
    if not isinstance(schedule, dict):
        raise DataError("expected a JSON object", path=path)
    for key in REQUIRED_KEYS:
        if key not in schedule:
            raise DataError("missing required field", path=path, field=key)
    return schedule


def load_curriculum(source: str | Path | None, *, items: Sequence[RationaleItem] | None = None,
                    epochs: int | None = None, student: str | None = None, seed: int = 0) -> Curriculum:
    """The Curriculum a trainer follows.

    `source` is a schedule file written by `kpod schedule` (its "method" decides: kpod -> the static
    c_i(t), acl -> Adaptive CL from the stored difficulties and clusters, spl / icl / none), or a
    method name: "none", "spl" and "icl" need `items`; "acl" and "kpod" also need the `student` for
    the difficulty pass (uniform token weights).
    """
    if source is None or str(source) in ("", "none"):
        return NoCurriculum()
    if str(source) in ("kpod", "acl", "spl", "icl"):
        if items is None:
            raise KpodError(f"curriculum '{source}' needs the training items")
        cfg = ScheduleConfig(method=str(source), epochs=epochs or 20, seed=seed)
        if cfg.method in ("kpod", "acl"):
            return _from_schedule(build_schedule(items, cfg, student=student), items)
        return _from_schedule(build_schedule(items, cfg), items)
    return _from_schedule(read_schedule(source), items, path=source)


def _from_schedule(schedule: dict, items: Sequence[RationaleItem] | None, path: object = None) -> Curriculum:
    method = schedule.get("method", "kpod")
    try:
        cfg = from_dict(ScheduleConfig, {**schedule.get("config", {}), "method": method,
                                         "epochs": schedule["epochs"], "T": schedule["T"]})
    except ConfigError as err:
        raise DataError(f"unreadable config ({err})", path=path, field="config") from None
    keys = list(schedule["input_steps"])
    if method == "kpod":
        return StaticCurriculum(schedule["input_steps"])
    if method == "acl":
        for field in ("difficulties", "clusters"):
            if field not in schedule:
                raise DataError("an acl schedule needs this field", path=path, field=field)
        return AdaptiveCurriculum(schedule["difficulties"], schedule["clusters"], cfg)
    if method == "spl":
        return SelfPacedCurriculum(cfg)
    if method == "icl":
        return InSampleCurriculum(keys if items is None else [item.key for item in items], cfg)
    if method == "none":
        return NoCurriculum()
    raise DataError(f"unknown method {method!r}", path=path, field="method")
