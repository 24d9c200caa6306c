"""Benchmark of the token weighting module (KPOD Eq. 2-7), issue 5.

Testbed: train the module on train-split rationales, write weights for the test split (rationales the
module never saw), and score them against the testbed's keypoint labels: ROC-AUC (scikit-learn) and
the mean weight of keypoint versus filler tokens, over the rationale body (the final answer sentence
is unlabeled and gets weight 1 by construction, so it is left out), and per token class. Settings
start from the testbed defaults of `kpod run` (RunConfig().weigh), whose predictor is the run's plain
CoT student: give its directory as --predictor (RUN/stages/train-<cotd seed 0>/final). The student
is the causal base model of `kpod base-model`.

GSM8K: the LLaMA-3-70B rationales of ../shared/data (correct ones), with the testbed's small base
causal model as student and predictor (no hub model is reachable here; its byte-level tokenizer reads
any text), mean weight of digit and operator tokens versus the rest over held-out rationales, and a
heatmap of a few of them.

    python benchmarks/weighting.py testbed --testbed DIR --base DIR --predictor DIR [--eval-split dev] [--config JSON]
    python benchmarks/weighting.py gsm8k --base DIR [--n 600] [--config JSON]

Prints the figures and merges them into benchmarks/results/weighting.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from kpod.config import from_dict, merge, to_dict
from kpod.data.example import rationale_items
from kpod.data.loaders import load_examples
from kpod.io import write_json, write_text
from kpod.pipeline.config import RunConfig
from kpod.pipeline.run import COTD_PREDICTOR
from kpod.weighting.config import WeighConfig
from kpod.weighting.heatmap import class_means, heatmap_page
from kpod.weighting.scoring import keypoint_scores
from kpod.weighting.weigh import body_weights, build_parts, compute_weights, encode, train, training_subset

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def labeled(rows, weights, examples) -> list:
    by_id = {ex.id: ex for ex in examples}
    return [(row.item.rationale, by_id[row.item.example_id].keypoints or [], weights[row.item.key]) for row in rows]


def run_testbed(args, cfg: WeighConfig) -> dict:
    student = str(Path(args.base) / "causal")
    if cfg.predictor == COTD_PREDICTOR and not args.predictor:
        raise SystemExit("the testbed's predictor is the plain CoT student: pass --predictor RUN/stages/train-*/final "
                         "(the cotd stage of seed 0), or another predictor")
    cfg.predictor = args.predictor or student
    parts = build_parts(student, cfg)
    train_rows = training_subset(encode(parts, rationale_items(load_examples(args.testbed, "train"))), cfg)
    test_examples = load_examples(args.testbed, args.eval_split)
    test_rows = encode(parts, rationale_items(test_examples))
    stats = train(parts, train_rows, cfg)
    started = time.perf_counter()
    weights = dict(compute_weights(parts.generator, test_rows, floor=0.0, device=parts.device))
    write_s = time.perf_counter() - started
    result = {"config": to_dict(cfg), "eval_split": args.eval_split, "train_rationales": len(train_rows), "test_rationales": len(test_rows),
              **keypoint_scores(labeled(test_rows, weights, test_examples)), "train": stats,
              "write_rationales_per_s": round(len(test_rows) / write_s, 1),
              "train_plus_write_seconds": round(stats["train_seconds"] + write_s, 1)}
    texts = {r.item.key: (r.item.rationale, weights[r.item.key]) for r in test_rows}
    write_text(RESULTS / "weighting_testbed_heatmap.html", heatmap_page(texts, limit=12, title="Testbed (held out)"))
    return result


def run_gsm8k(args, cfg: WeighConfig) -> dict:
    from kpod.data.rationales import load_with_rationales

    data = Path(args.shared_data)
    examples, _ = load_with_rationales("gsm8k", data, only_correct=True,
                                       files=[data / "rationales" / "gsm8k_llama3-70b.json"])
    examples = [ex for ex in examples if ex.rationales][: args.n + args.n_test]
    student = str(Path(args.base) / "causal")
    cfg.predictor = args.predictor or student
    parts = build_parts(student, cfg)
    rows = encode(parts, rationale_items(examples))
    train_rows, test_rows = rows[: args.n], rows[args.n:]
    stats = train(parts, train_rows, cfg)
    weights = dict(compute_weights(parts.generator, test_rows, floor=0.0, device=parts.device))
    shown = {r.item.key: (r.item.rationale, body_weights(weights[r.item.key], len(r.rationale)))
             for r in test_rows}  # the rationale body: answer-sentence tokens are 1 by construction
    means = class_means(shown.values())
    rest = [m for c, m in means.items() if c not in ("digits", "operators")]
    rest_mean = sum(m["mean"] * m["tokens"] for m in rest) / max(1, sum(m["tokens"] for m in rest))
    write_text(RESULTS / "weighting_gsm8k_heatmap.html",
               heatmap_page(shown, limit=8, title="GSM8K, LLaMA-3-70B rationales (held out)"))
    return {"config": to_dict(cfg), "train_rationales": len(train_rows), "test_rationales": len(test_rows),
            "class_means": means, "mean_weight_rest": rest_mean, "train": stats,
            "student": student, "predictor": cfg.predictor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["testbed", "gsm8k"])
    parser.add_argument("--testbed", default=str(REPO / "runs" / "bench_weighting" / "testbed"))
    parser.add_argument("--base", default=str(REPO / "runs" / "bench_weighting" / "base"))
    parser.add_argument("--predictor", default=None)
    parser.add_argument("--eval-split", default="test",
                        help="testbed: split the weights are scored on (tune settings on dev, report test once)")
    parser.add_argument("--shared-data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--n", type=int, default=600, help="gsm8k: training rationales")
    parser.add_argument("--n-test", type=int, default=200, help="gsm8k: held-out rationales")
    parser.add_argument("--config", default="{}", help="WeighConfig overrides as JSON")
    args = parser.parse_args()
    defaults = to_dict(RunConfig().weigh) if args.part == "testbed" else {}
    cfg = from_dict(WeighConfig, merge(defaults, json.loads(args.config)))
    result = run_testbed(args, cfg) if args.part == "testbed" else run_gsm8k(args, cfg)
    result["threads"] = os.environ.get("OMP_NUM_THREADS")
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2))
    path = RESULTS / "weighting.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged[args.part] = result
    write_json(path, merged)


if __name__ == "__main__":
    main()
