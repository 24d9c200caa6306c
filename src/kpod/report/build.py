"""`kpod report RUN_DIR`: one self-contained HTML file (images embedded) describing a run.

Sections: the accuracy table, the token-weight heatmap and weight by token class (Figure 2), the
budget D(t) against the scheduled difficulty and the spread of c_i(t) over stages, training and dev
curves, the sensitivity plots of a grid run, the time each stage took, and the configuration.
"""

from __future__ import annotations

import argparse
import base64
import html
from datetime import datetime, timezone
from pathlib import Path

from kpod.errors import KpodError
from kpod.io import AppendOnlyJsonl, read_json, write_text
from kpod.pipeline.stages import stage_dir, stage_environment, stage_seconds
from kpod.report import plots

STYLE = """
body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #eee;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0} td,th{padding:.3em .9em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left} .best{font-weight:bold;background:#eef8ee}
.figs{display:flex;flex-wrap:wrap;gap:1em} .figs figure{margin:0} figcaption{font-size:85%;color:#555}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:85%}
.kpod-rationale{font-family:monospace;line-height:1.8;margin:1em 0;padding:.5em;border:1px solid #ddd}
.kpod-key{color:#777;font-size:80%} .note{color:#555}
"""


def _img(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def accuracy_table(metrics: dict) -> str:
    sets = metrics.get("eval_sets", [])
    labels = [k for k, v in metrics.items() if isinstance(v, dict) and "sets" in v]
    if not labels:
        return "<p>No evaluation results yet.</p>"
    best = {s: max((metrics[l]["sets"][s]["mean"] for l in labels if s in metrics[l]["sets"]), default=None)
            for s in sets}
    head = "".join(f"<th>{html.escape(s)}</th>" for s in sets)
    rows = []
    for label in labels:
        cells = []
        for s in sets:
            cell = metrics[label]["sets"].get(s)
            if cell is None:
                cells.append("<td>-</td>")
                continue
            mark = ' class="best"' if cell["mean"] == best[s] else ""
            spread = f" ± {100 * cell['std']:.1f}" if len(cell["per_seed"]) > 1 else ""
            cells.append(f"<td{mark}>{100 * cell['mean']:.1f}{spread}</td>")
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{len(metrics[label]['seeds'])}</td>{''.join(cells)}</tr>")
    auc = (f"<p>Keypoint ROC-AUC of the learned token weights against the testbed's keypoint labels, over the "
           f"rationale bodies (0.5 is chance, below 0.5 means keypoints get the lower weights): "
           f"<b>{metrics['keypoint_auc']:.3f}</b></p>") if "keypoint_auc" in metrics else ""
    return (f"<table><tr><th>method</th><th>seeds</th>{head}</tr>{''.join(rows)}</table>"
            f"<p class='note'>Accuracy in %, mean ± sample standard deviation over seeds; best per column shaded.</p>{auc}")


def weights_section(weights_dir: Path, data_file: Path) -> str:
    from kpod.data.loaders import load_examples
    from kpod.data.example import rationale_items
    from kpod.weighting.heatmap import class_means, heatmap_fragment
    from kpod.weighting.store import read_weights

    weights = read_weights(weights_dir)
    texts = {it.key: (it.rationale, weights[it.key]) for it in rationale_items(load_examples(str(data_file)))
             if it.key in weights}
    means = {c: m["mean"] for c, m in class_means(texts.values()).items() if m["tokens"]}
    figures = _img(plots.class_weight_plot(means), "mean token weight by token class")
    learning, note = mask_learning(weights_dir)
    return (f'<div class="figs">{figures}{learning}</div>{note}'
            f'{heatmap_fragment(texts, limit=6, title="Token weights (Figure 2)")}')


def mask_learning(weights_dir: Path) -> tuple[str, str]:
    """The reader's answer loss (Eq. 5) during mask learning, by phase, and its mean at the end of
    each phase (`kpod.weighting.weigh.answer_loss_by_phase`)."""
    from kpod.weighting.weigh import answer_loss_by_phase

    records = AppendOnlyJsonl(weights_dir / "train_log.jsonl").records()
    if not records:
        return "", ""
    by_phase: dict[str, tuple[list, list]] = {}
    for record in records:
        steps, losses = by_phase.setdefault(record["phase"], ([], []))
        steps.append(record["step"])
        losses.append(record["answer_loss"])
    figure = _img(plots.curves_plot(by_phase, "answer loss L_p (nats)"), "mask learning: the reader's answer loss "
                  "(warmup: random masks; mask: learned masks)")
    ends = ", ".join(f"{html.escape(phase)} {loss:.2f}" for phase, loss in answer_loss_by_phase(records).items())
    return figure, (f"<p class='note'>Answer loss over the last 10 steps of each phase, in nats: {ends}. "
                    "A loss under the learned masks far above the warm-up's means the masks removed what the reader "
                    "answers from, and the weights do not mark what it needs.</p>")


def _cell(value, spec: str) -> str:
    """A number for a table cell; empty where the schedule has none (SPL and ICL have no budget)."""
    return "" if value is None else format(value, spec)


def schedule_section(schedule_file: Path) -> str:
    schedule = read_json(schedule_file)
    figures = [_img(plots.input_steps_plot(schedule["input_steps"], schedule["num_steps"]),
                    "input steps c_i(t) / n_i over stages")]
    if any(s.get("budget") is not None for s in schedule["stages"]):
        figures.insert(0, _img(plots.budget_plot(schedule["stages"]), "budget D(t) against the scheduled difficulty"))
    rows = "".join(
        f"<tr><td>{s['t']}</td><td>{_cell(s.get('budget'), '.1f')}</td><td>{_cell(s.get('scheduled'), '.1f')}</td>"
        f"<td>{s['selected']}</td><td>{_cell(s.get('certificate_ratio'), '.4f')}</td></tr>"
        for s in schedule["stages"])
    table = ("<table><tr><th>stage t</th><th>budget D(t)</th><th>scheduled</th><th>selected</th>"
             f"<th>g(S) / upper bound</th></tr>{rows}</table>")
    return f'<div class="figs">{"".join(figures)}</div>{table}'


def curves_section(runs: list[dict]) -> str:
    loss, dev = {}, {}
    for run in runs:
        records = AppendOnlyJsonl(Path(run["train"]) / "train_log.jsonl").records()
        name = f"{run['label']} s{run['seed']}"
        steps = [r for r in records if "loss" in r]
        evals = [r for r in records if "eval" in r]
        if steps:
            loss[name] = ([r["step"] for r in steps], [r["loss"] for r in steps])
        if evals:
            dev[name] = ([r["step"] for r in evals], [r["eval"]["accuracy"] for r in evals])
    figures = []
    if loss:
        figures.append(_img(plots.curves_plot(loss, "training loss (token NLL)"), "training loss"))
    if dev:
        figures.append(_img(plots.curves_plot(dev, "dev accuracy"), "dev accuracy during training"))
    return f'<div class="figs">{"".join(figures)}</div>' if figures else "<p>No training logs.</p>"


def grid_value(label: str, key: str) -> float | None:
    """The value of grid axis `key` ("schedule.beta" or "beta") in a variant label such as
    "kpod[beta=12,p=0.5]"; None when the label has no such axis."""
    short = key.split(".")[-1]
    if f"{short}=" not in label:
        return None
    return float(label.split(f"{short}=", 1)[1].split(",")[0].rstrip("]"))


def sensitivity_section(index: dict, metrics: dict) -> str:
    """Accuracy against each grid axis (the paper's Figures 3 and 4)."""
    figures = []
    sets = metrics.get("eval_sets", [])
    for axis in index.get("grid", []):
        key = axis.split("=", 1)[0]
        points = []
        for label, entry in metrics.items():
            value = grid_value(label, key) if isinstance(entry, dict) else None
            if value is None:
                continue
            acc = [entry["sets"].get(s, {}).get("mean", float("nan")) for s in sets[:2]] + [float("nan")] * 2
            points.append((value, acc[0], acc[1]))
        if points:
            figures.append(_img(plots.sensitivity_plot(key, points), f"accuracy against {key}"))
    return f'<div class="figs">{"".join(figures)}</div>' if figures else ""


def stage_times_section(runs: list[dict]) -> str:
    """Seconds per stage, in the order the run needs them, each stage once (a skipped stage shows the
    time of the run that computed it), and the environments the stages were computed in."""
    seen: dict[Path, None] = {}
    for run in runs:
        for path in (run["data"], run["student"], run.get("weights"), run.get("schedule"), run["train"],
                     *run["eval"].values()):
            found = stage_dir(path) if path else None
            if found is not None:
                seen.setdefault(found, None)
    if not seen:
        return "<p>No stage timings.</p>"
    seconds = {path: stage_seconds(path) for path in seen}
    environments: list[str] = []
    rows = []
    for path in seen:
        recorded = stage_environment(path)
        described = ", ".join(f"{key} {value}" for key, value in recorded.items() if value) if recorded else "not recorded"
        environments += [described] if described not in environments else []
        rows.append(f"<tr><td>{html.escape(path.name)}</td><td>{seconds[path]:.1f}</td>"
                    f"<td>{environments.index(described) + 1}</td></tr>")
    total = sum(seconds.values())
    legend = "".join(f"<li>{html.escape(e)}</li>" for e in environments)
    return (f"<table><tr><th>stage</th><th>seconds</th><th>computed in</th></tr>{''.join(rows)}"
            f"<tr><th>all stages</th><th>{total:.1f}</th><th></th></tr></table>"
            f"<p class='note'>Computed in (the same stage computed elsewhere can round differently):</p>"
            f"<ol>{legend}</ol>")


def build_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "index.json").exists():
        raise KpodError(f"{run_dir} is not a kpod run directory (no index.json)")
    index = read_json(run_dir / "index.json")
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    runs = index["runs"]
    sections = [("Accuracy", accuracy_table(metrics))]
    weighed = next((r for r in runs if r.get("weights")), None)
    if weighed:
        sections.append(("Token significance", weights_section(Path(weighed["weights"]),
                                                                Path(weighed["data"]) / "train.jsonl")))
    scheduled = next((r for r in runs if r.get("schedule") and r["method"] == "kpod"),
                     next((r for r in runs if r.get("schedule")), None))
    if scheduled:
        sections.append(("Progressive schedule", schedule_section(Path(scheduled["schedule"]))))
    sections.append(("Training", curves_section(runs)))
    sensitivity = sensitivity_section(index, metrics)
    if sensitivity:
        sections.append(("Sensitivity", sensitivity))
    sections.append(("Stage times", stage_times_section(runs)))
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").exists() else ""
    sections.append(("Configuration", f"<pre>{html.escape(config)}</pre>"))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>kpod report: "
            f"{html.escape(index['name'])}</title><style>{STYLE}</style></head><body>"
            f"<h1>kpod report: {html.escape(index['name'])}</h1><p class='note'>{len(runs)} trained students, "
            f"written {stamp}</p>{body}</body></html>\n")
    out = run_dir / "report.html"
    write_text(out, page)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by `kpod run` or `kpod demo`")


def main(args: argparse.Namespace) -> int:
    print(f"wrote {build_report(args.run_dir)}")
    return 0
