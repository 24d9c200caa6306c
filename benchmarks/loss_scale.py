"""Loss scale: do KPOD's token weights hurt through the size of the loss (the effective learning rate)?

    python benchmarks/loss_scale.py --from-run runs/table2 [--methods kpod kpod-wo-prog] [--seeds 0 1 2]

Eq. 15 divides the weighted NLL sum by the number of target tokens, so weights of 0.2 on most tokens
also shrink the gradient. For every (method, seed) student of a finished Table 2 run (RUN/index.json),
this trains the same student again with `--loss-normalizer weights` (divided by the sum of the
weights instead). Everything else is the stage's own: data, base student, token weights, schedule
and every setting in its train_config.json. Each student is evaluated like the run's, and
benchmarks/results/loss_scale.json puts both normalizers side by side.

Work goes to OUT/<label>-seed<k>/ and finished work is skipped, so processes with different
--methods can share OUT; a last call with every method collects the figures.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from kpod.cli import main as kpod
from kpod.config import from_dict, load_config
from kpod.data.loaders import load_examples
from kpod.distill.config import TrainConfig
from kpod.eval.evaluate import evaluate
from kpod.io import read_json, write_json
from kpod.pipeline.config import RunConfig
from kpod.pipeline.run import config_flags

RESULTS = Path(__file__).parent / "results" / "loss_scale.json"


def train_again(run: dict, out: Path) -> Path:
    """The run's student retrained with Eq. 15 divided by the sum of the target tokens' weights."""
    final = out / "final"
    if (final / "config.json").exists():
        return final
    train = from_dict(TrainConfig, read_json(Path(run["train"]) / "train_config.json"))
    train.student, train.loss_normalizer = run["student"], "weights"
    data = Path(run["data"])
    argv = ["train", "--data", str(data / "train.jsonl"), "--dev", str(data / "dev.jsonl"), *config_flags(train),
            "--weights", run["weights"], "--out", str(out)]
    if run["schedule"]:
        argv += ["--schedule", run["schedule"]]
    if out.exists():
        argv.append("--resume")
    if kpod(argv):
        raise SystemExit(f"training {out} failed")
    return final


def accuracy(model: Path, data: Path, eval_set: str, out: Path, cfg: RunConfig) -> float:
    if not (out / "metrics.json").exists():
        examples = load_examples(str(data / f"{eval_set.replace(':', '_')}.jsonl"))[: cfg.data.eval_limit]
        evaluate(str(model), examples, out, max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size)
    return read_json(out / "metrics.json")["accuracy"]


def summary(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "per_seed": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-run", type=Path, required=True, help="a finished Table 2 run directory")
    parser.add_argument("--methods", nargs="+", default=["kpod", "kpod-wo-prog"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/loss_scale"))
    args = parser.parse_args()
    cfg = load_config(RunConfig, args.from_run / "config.yaml", [])
    rows: dict[str, dict[str, dict[str, list[float]]]] = {}
    for run in read_json(args.from_run / "index.json")["runs"]:
        if run["method"] not in args.methods or run["seed"] not in args.seeds:
            continue
        out = args.out / f"{run['label']}-seed{run['seed']}"
        model = train_again(run, out)
        for eval_set, eval_dir in run["eval"].items():
            by_normalizer = rows.setdefault(run["label"], {}).setdefault(eval_set, {"tokens": [], "weights": []})
            by_normalizer["tokens"].append(read_json(Path(eval_dir) / "metrics.json")["accuracy"])
            by_normalizer["weights"].append(accuracy(model, Path(run["data"]), eval_set, out / "eval" / eval_set, cfg))
    report = {"command": "python benchmarks/loss_scale.py --from-run RUN --methods " + " ".join(args.methods)
              + " --seeds " + " ".join(map(str, args.seeds)),
              "seeds": args.seeds,
              "accuracy": {label: {eval_set: {normalizer: summary(values) for normalizer, values in sets.items()}
                                   for eval_set, sets in by_set.items()} for label, by_set in rows.items()}}
    for label, by_set in report["accuracy"].items():
        for eval_set, by_normalizer in by_set.items():
            print(f"{label:14s} {eval_set:9s} " + "  ".join(
                f"{name} {100 * s['mean']:.1f} ± {100 * s['std']:.1f}" for name, s in by_normalizer.items()))
    write_json(RESULTS, report)


if __name__ == "__main__":
    main()
