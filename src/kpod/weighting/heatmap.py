"""The token-weight heatmap of KPOD's Figure 2 as a self-contained HTML fragment or page.

Each rationale token is shaded red in proportion to its weight; a table gives the mean weight of
each token class (digits, operators, words, other), the paper's reading of Figure 2 being that
digit and operator tokens get the highest weights.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable, Mapping

import numpy as np

from kpod.weighting.store import TokenWeights

TOKEN_CLASSES = ("digits", "operators", "words", "other")
_OPERATORS = set("+-*/=×÷%<>^")


@functools.lru_cache(maxsize=1 << 16)  # called per token of every rationale; token texts repeat
def token_class(text: str) -> str:
    """The class of a token's text: "digits" if it holds a digit, "operators" if it is made of
    arithmetic symbols (+ - * / = × ÷ % < > ^), "words" if it holds a letter, else "other"."""
    core = text.strip()
    if any(c.isdigit() for c in core):
        return "digits"
    if core and all(c in _OPERATORS for c in core):
        return "operators"
    if re.search(r"[^\W\d_]", core):
        return "words"
    return "other"


def class_means(items: Iterable[tuple[str, TokenWeights]]) -> dict[str, dict[str, float]]:
    """Mean weight and token count per class over (rationale text, TokenWeights) pairs."""
    sums = {c: 0.0 for c in TOKEN_CLASSES}
    counts = {c: 0 for c in TOKEN_CLASSES}
    for text, tw in items:
        for (start, end), w in zip(tw.offsets, tw.weights):
            cls = token_class(text[start:end])
            sums[cls] += float(w)
            counts[cls] += 1
    return {c: {"mean": sums[c] / counts[c] if counts[c] else float("nan"), "tokens": counts[c]}
            for c in TOKEN_CLASSES}


def _shade(text: str, tw: TokenWeights) -> str:
    parts, cursor = [], 0
    for (start, end), w in zip(tw.offsets.tolist(), tw.weights.tolist()):
        if start < cursor:  # overlapping byte-level spans: show the text once
            start = cursor
        if start > cursor:
            parts.append(html.escape(text[cursor:start]))
        if end > start:
            parts.append(f'<span style="background:rgba(220,20,20,{w:.3f})" title="{w:.3f}">'
                         f"{html.escape(text[start:end])}</span>")
            cursor = end
    parts.append(html.escape(text[cursor:]))
    return "".join(parts).replace("\n", "<br>")


def heatmap_fragment(rationales: Mapping[str, tuple[str, TokenWeights]], *, limit: int = 12,
                     title: str = "Token significance weights") -> str:
    """An HTML fragment (no <html> wrapper): the class-mean table over all `rationales`
    ({key: (text, TokenWeights)}) and the shaded tokens of the first `limit` of them."""
    means = class_means(rationales.values())
    weights = np.concatenate([tw.weights for _, tw in rationales.values()] or [np.zeros(0)])
    rows = "".join(f"<tr><td>{c}</td><td>{m['mean']:.3f}</td><td>{m['tokens']}</td></tr>" for c, m in means.items())
    spread = (f"<p>{len(rationales)} rationales, {len(weights)} tokens; weight min {weights.min():.3f}, "
              f"median {np.median(weights):.3f}, max {weights.max():.3f}</p>") if len(weights) else ""
    shown = "".join(
        f'<div class="kpod-rationale"><div class="kpod-key">{html.escape(key)}</div>{_shade(text, tw)}</div>'
        for key, (text, tw) in list(rationales.items())[:limit])
    return (f'<section class="kpod-heatmap"><h2>{html.escape(title)}</h2>{spread}'
            f"<table><tr><th>token class</th><th>mean weight</th><th>tokens</th></tr>{rows}</table>"
            f"<p>Deeper red: higher weight w<sub>j</sub> (hover a token for its value).</p>{shown}</section>")


STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
         ".kpod-rationale{font-family:monospace;line-height:1.8;margin:1em 0;padding:.5em;border:1px solid #ddd}"
         ".kpod-key{color:#777;font-size:80%}table{border-collapse:collapse}td,th{padding:.2em .8em;"
         "border-bottom:1px solid #ddd;text-align:left}")


def heatmap_page(rationales: Mapping[str, tuple[str, TokenWeights]], *, limit: int = 12,
                 title: str = "Token significance weights") -> str:
    """A standalone HTML page around `heatmap_fragment`."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{heatmap_fragment(rationales, limit=limit, title=title)}"
            "</body></html>\n")
