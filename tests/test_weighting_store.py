"""weights.jsonl round trip, char_span_weights and the heatmap."""

import json

import numpy as np
import pytest

from kpod.errors import DataError
from kpod.weighting.heatmap import class_means, heatmap_page, token_class
from kpod.weighting.store import TokenWeights, char_span_weights, read_weights, write_weights


def sample():
    return {"a": TokenWeights(np.array([[0, 3], [3, 5], [6, 8]]), np.array([0.25, 0.5, 0.75])),
            "b#1": TokenWeights(np.zeros((0, 2), dtype=int), np.zeros(0))}


def test_round_trip(tmp_path):
    path = write_weights(tmp_path, sample())
    assert path == tmp_path / "weights.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"id": "a", "offsets": [[0, 3], [3, 5], [6, 8]], "weights": [0.25, 0.5, 0.75]}
    back = read_weights(tmp_path)
    assert list(back) == ["a", "b#1"]
    assert back["a"].offsets.tolist() == [[0, 3], [3, 5], [6, 8]]
    assert back["a"].weights.tolist() == [0.25, 0.5, 0.75]
    assert len(back["b#1"].weights) == 0


@pytest.mark.parametrize("record, field", [
    ({"id": "x", "offsets": [[0, 1]], "weights": [0.1, 0.2]}, "weights"),
    ({"id": "x", "offsets": [[0, 1]], "weights": [1.5]}, "weights"),
    ({"id": "x", "offsets": "nope", "weights": [0.5]}, "offsets"),
    ({"id": "x", "weights": [0.5]}, "offsets"),
])
def test_bad_records_name_the_line_and_field(tmp_path, record, field):
    path = tmp_path / "weights.jsonl"
    path.write_text(json.dumps({"id": "ok", "offsets": [], "weights": []}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError) as err:
        read_weights(tmp_path)
    assert err.value.line == 2 and err.value.field == field


def test_duplicate_keys_are_rejected(tmp_path):
    rec = json.dumps({"id": "x", "offsets": [[0, 1]], "weights": [0.5]})
    (tmp_path / "weights.jsonl").write_text(rec + "\n" + rec + "\n")
    with pytest.raises(DataError, match="duplicate"):
        read_weights(tmp_path)


def test_char_span_weights_average_overlapping_tokens():
    tw = sample()["a"]
    # [0,5) overlaps tokens 0 and 1 -> 0.375; [4,7) overlaps 1 and 2 -> 0.625; [5,6) none -> 1.0
    got = char_span_weights(tw, [[0, 5], [4, 7], [5, 6], [7, 8]])
    assert got.tolist() == pytest.approx([0.375, 0.625, 1.0, 0.75])
    assert char_span_weights(sample()["b#1"], [[0, 2]]).tolist() == [1.0]


def test_token_classes():
    assert [token_class(t) for t in [" 12", "7", " +", "=", " apples", ",", " ", "x2"]] == \
        ["digits", "digits", "operators", "operators", "words", "other", "other", "digits"]


def test_heatmap_shades_tokens_and_reports_class_means():
    text = "12 + 30 so"
    tw = TokenWeights(np.array([[0, 2], [2, 4], [4, 7], [7, 10]]), np.array([0.9, 0.8, 0.7, 0.1]))
    means = class_means([(text, tw)])
    assert means["digits"]["mean"] == pytest.approx(0.8) and means["digits"]["tokens"] == 2
    assert means["operators"]["mean"] == pytest.approx(0.8) and means["words"]["mean"] == pytest.approx(0.1)
    page = heatmap_page({"k<1>": (text, tw)})
    assert page.startswith("<!doctype html>") and "k&lt;1&gt;" in page
    assert page.count("rgba(220,20,20,") == 4 and 'title="0.900"' in page
    assert "<td>digits</td><td>0.800</td><td>2</td>" in page
