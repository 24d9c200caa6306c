"""`kpod weigh` end to end on a tiny generic JSONL: outputs, alignment, resume after a kill."""

import json

import numpy as np
import pytest

from kpod.cli import main
from kpod.models.loading import load_tokenizer
from kpod.weighting import read_weights
from kpod.weighting import weigh as weigh_module
from kpod.weighting.weigh import answer_loss_by_phase

RATIONALES = [
    ("Tom has 12 apples and buys 30 more.", "Tom starts with 12 apples. He buys 30, so 12 + 30 = 42. "
                                            "Therefore, the answer is 42.", "42"),
    ("A box holds 6 pens. How many pens are in 7 boxes?", "Each box holds 6 pens. So 7 * 6 = 42 pens. "
                                                           "Therefore, the answer is 42.", "42"),
    ("Sara had $150 and spent $20. How much is left?", "She had $150. Then 150 - 20 = 130. "
                                                        "Therefore, the answer is 130.", "130"),
]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"id": f"q{i}", "question": q, "answer": a, "rationale": r} for i, (q, r, a) in enumerate(RATIONALES)]
    rows.append({"id": "two", "question": RATIONALES[0][0], "answer": "42",
                 "rationales": [RATIONALES[0][1], "12 + 30 = 42. The answer is 42"]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(data, tiny_models, out, *extra):
    return main(["weigh", "--data", str(data), "--student", str(tiny_models["causal"]), "--predictor",
                 str(tiny_models["seq2seq"]), "--out", str(out), "--batch-size", "2", "--epochs", "2",
                 "--checkpoint-every", "1", *extra])


def test_weigh_writes_aligned_weights_heatmap_and_summary(data, tiny_models, tmp_path):
    out = tmp_path / "w"
    assert run(data, tiny_models, out) == 0
    weights = read_weights(out)
    assert list(weights) == ["q0", "q1", "q2", "two#0", "two#1"]
    tokenizer = load_tokenizer(str(tiny_models["causal"]))
    texts = [r for _, r, _ in RATIONALES] + [RATIONALES[0][1], "12 + 30 = 42. The answer is 42"]
    for tw, text in zip(weights.values(), texts):
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        assert tw.offsets.tolist() == [list(o) for o in offsets]
        assert ((tw.weights > 0) & (tw.weights < 1)).all()
    html = (out / "heatmap.html").read_text()
    assert "Token significance weights" in html and "two#1" in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rationales"] == 5 and summary["train"]["steps"] == 6
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert summary["answer_loss_by_phase"] == answer_loss_by_phase(log) and set(summary["answer_loss_by_phase"]) <= {
        "reader", "warmup", "mask"}
    assert not (out / "checkpoint.pt").exists() and not (out / ".weights.partial.jsonl").exists()


def test_killed_run_resumes_on_the_same_trajectory(data, tiny_models, tmp_path, monkeypatch):
    assert run(data, tiny_models, tmp_path / "whole", "--reader-epochs", "1") == 0
    original = weigh_module.MaskLearner.forward
    calls = {"n": 0}

    def dies_at_step_five(self, batch, phase="mask"):
        calls["n"] += 1
        if calls["n"] == 5:  # after the 3 predictor warm-up steps: the checkpoint holds the warmed predictor
            raise KeyboardInterrupt
        return original(self, batch, phase)

    monkeypatch.setattr(weigh_module.MaskLearner, "forward", dies_at_step_five)
    assert run(data, tiny_models, tmp_path / "resumed", "--reader-epochs", "1") == 130
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    assert not (tmp_path / "resumed" / "weights.jsonl").exists()
    monkeypatch.setattr(weigh_module.MaskLearner, "forward", original)
    assert run(data, tiny_models, tmp_path / "resumed", "--reader-epochs", "1") == 0
    whole, resumed = read_weights(tmp_path / "whole"), read_weights(tmp_path / "resumed")
    assert whole.keys() == resumed.keys()
    for key in whole:
        np.testing.assert_allclose(whole[key].weights, resumed[key].weights, atol=1e-5)
    log = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()]
    assert log == list(range(1, 10))  # 3 predictor warm-up steps, then 6 mask-learning steps
    assert run(data, tiny_models, tmp_path / "resumed", "--reader-epochs", "1", "--alpha", "0.3") == 2  # other settings: refused


def test_run_killed_while_writing_keeps_whole_batches_and_writes_each_rationale_once(data, tiny_models, tmp_path,
                                                                                    monkeypatch):
    assert run(data, tiny_models, tmp_path / "whole", "--write-batch-size", "2") == 0
    original = weigh_module.compute_weight_batches

    def dies_at_the_second_batch(*args, **kwargs):
        for number, batch in enumerate(original(*args, **kwargs), start=1):
            if number == 2:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(weigh_module, "compute_weight_batches", dies_at_the_second_batch)
    out = tmp_path / "killed"
    assert run(data, tiny_models, out, "--write-batch-size", "2") == 130
    partial = [json.loads(line)["id"] for line in (out / ".weights.partial.jsonl").read_text().splitlines()]
    assert len(partial) == 2  # the first batch, flushed; the third rationale was never written
    monkeypatch.setattr(weigh_module, "compute_weight_batches", original)
    assert run(data, tiny_models, out, "--write-batch-size", "2") == 0
    whole, resumed = read_weights(tmp_path / "whole"), read_weights(out)
    assert list(resumed) == list(whole)
    assert len((out / "weights.jsonl").read_text().splitlines()) == len(whole)  # no rationale twice
    for key in whole:
        np.testing.assert_array_equal(whole[key].weights, resumed[key].weights)


def test_bad_data_is_a_clear_error(tmp_path, tiny_models, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q"}\n')
    assert main(["weigh", "--data", str(bad), "--student", str(tiny_models["causal"]), "--out",
                 str(tmp_path / "o")]) == 2
    assert "bad.jsonl" in capsys.readouterr().err


def test_answer_loss_by_phase_is_the_mean_of_each_phase_s_last_steps():
    log = [{"phase": "warmup", "answer_loss": 2.0 + s % 2} for s in range(1, 13)]  # last 10: 2,3,2,3,...: 2.5
    log += [{"phase": "mask", "answer_loss": float(s)} for s in range(13, 33)]  # last 10: 23..32
    assert answer_loss_by_phase(log) == {"warmup": 2.5, "mask": 27.5}
    assert answer_loss_by_phase(log, last=1) == {"warmup": 2.0, "mask": 32.0}
    assert answer_loss_by_phase([]) == {}
