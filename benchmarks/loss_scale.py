"""Loss scale: do KPOD's token weights hurt through the size of the loss (the effective learning rate)?

    python benchmarks/loss_scale.py --from-run runs/table2 [--methods kpod kpod-wo-prog] [--seeds 0 1 2]

Eq. 15 divides the weighted NLL sum by the number of target tokens, so weights of 0.2 on most tokens
also shrink the gradient. For every (method, seed) student of a finished Table 2 run (RUN/index.json),
this trains the same student again with `train.loss_normalizer: weights` (divided by the sum of the
weights instead), on the run's own data, base student, token weights and schedule, with the run's
config and the method's settings otherwise; each student is evaluated like the run's, and
benchmarks/results/loss_scale.json puts both normalizers side by side.

The students are stages of `kpod run` in OUT/stages (skipped when finished, resumed when
interrupted), so processes with different --methods can share OUT; a last call with every method
collects the figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kpod.config import load_config
from kpod.io import read_json, write_json
from kpod.pipeline.config import RunConfig
from kpod.pipeline.methods import get_method
from kpod.pipeline.results import seed_summary
from kpod.pipeline.run import Pipeline, Variant, resolve

RESULTS = Path(__file__).parent / "results" / "loss_scale.json"


def retrained_accuracy(pipeline: Pipeline, cfg: RunConfig, run: dict) -> dict[str, float]:
    """Accuracy on each evaluation set of the run's student retrained with the weights normalizer."""
    method = get_method(run["method"])
    variant_cfg = resolve(cfg, method, {"train": {"loss_normalizer": "weights"}})
    data = Path(run["data"])
    train_dir = pipeline.train(Variant(run["label"], method, run["seed"], variant_cfg), data, run["student"],
                               Path(run["weights"]) if run["weights"] else None,
                               Path(run["schedule"]) if run["schedule"] else None)
    return {eval_set: read_json(pipeline.evaluate(variant_cfg, train_dir, data, eval_set) / "metrics.json")["accuracy"]
            for eval_set in run["eval"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-run", type=Path, required=True, help="a finished Table 2 run directory")
    parser.add_argument("--methods", nargs="+", default=["kpod", "kpod-wo-prog"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/loss_scale"))
    args = parser.parse_args()
    cfg = load_config(RunConfig, args.from_run / "config.yaml", [])
    pipeline = Pipeline(cfg, args.out)
    rows: dict[str, dict[str, dict[str, list[float]]]] = {}
    for run in read_json(args.from_run / "index.json")["runs"]:
        if run["method"] not in args.methods or run["seed"] not in args.seeds:
            continue
        retrained = retrained_accuracy(pipeline, cfg, run)
        for eval_set, eval_dir in run["eval"].items():
            by_normalizer = rows.setdefault(run["label"], {}).setdefault(eval_set, {"tokens": [], "weights": []})
            by_normalizer["tokens"].append(read_json(Path(eval_dir) / "metrics.json")["accuracy"])
            by_normalizer["weights"].append(retrained[eval_set])
    report = {"command": "python benchmarks/loss_scale.py --from-run RUN --methods " + " ".join(args.methods)
              + " --seeds " + " ".join(map(str, args.seeds)),
              "seeds": args.seeds,
              "accuracy": {label: {eval_set: {normalizer: seed_summary(values) for normalizer, values in sets.items()}
                                   for eval_set, sets in by_set.items()} for label, by_set in rows.items()}}
    for label, by_set in report["accuracy"].items():
        for eval_set, by_normalizer in by_set.items():
            print(f"{label:14s} {eval_set:9s} " + "  ".join(
                f"{name} {100 * s['mean']:.1f} ± {100 * s['std']:.1f}" for name, s in by_normalizer.items()))
    write_json(RESULTS, report)


if __name__ == "__main__":
    main()
