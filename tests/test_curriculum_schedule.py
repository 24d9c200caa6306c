"""The stage loop, the difficulty pass, the schedule file, `kpod schedule` and the curricula."""

import json

import numpy as np
import pytest
import torch

from kpod.curriculum.alternatives import AdaptiveCurriculum, InSampleCurriculum, SelfPacedCurriculum
from kpod.curriculum.base import Curriculum
from kpod.curriculum.budget import StepTable
from kpod.curriculum.config import ScheduleConfig
from kpod.curriculum.difficulty import step_difficulties
from kpod.curriculum.progressive import progressive_schedule
from kpod.curriculum.schedule import build_schedule, load_curriculum, read_schedule, write_schedule
from kpod.data.example import Example, rationale_items
from kpod.data.prompts import question_prompt
from kpod.data.steps import char_spans_to_token_spans, split_steps
from kpod.errors import DataError
from kpod.models.loading import load_model
from kpod.weighting.store import TokenWeights, write_weights


def random_table(rng, n):
    steps = rng.integers(0, 9, n)
    return StepTable.from_flat([f"q{i}" for i in range(n)], steps, rng.gamma(2.0, 0.5, int(steps.sum())))


@pytest.mark.parametrize("selection", ["greedy", "greedy_max", "ftgp"])
@pytest.mark.parametrize("start,delta_s,beta", [("last_step", 1, 12.0), ("selected", 2, 0.0), ("selected", 1, 12.0)])
def test_schedules_only_decrease_and_reach_zero_by_T(selection, start, delta_s, beta):
    rng = np.random.default_rng(3)
    table = random_table(rng, 400)
    cfg = ScheduleConfig(epochs=9, T=6, start=start, delta_s=delta_s, beta=beta, selection=selection)
    steps, stages = progressive_schedule(table, rng.integers(0, 5, 400), cfg)
    assert steps.shape == (400, 9)
    assert (steps[:, 0] <= table.num_steps).all() and (steps >= 0).all()
    assert (np.diff(steps, axis=1) <= 0).all(), "c_i never increases"
    assert (np.diff(steps[:, :6], axis=1) >= -delta_s).all(), "before T a stage hands over at most delta_s steps"
    assert (steps[:, 6:] == 0).all(), "every c_i is 0 from stage T on"
    for stage in stages[1:6]:
        # the selection respects Delta_D (Eq. 11): what it spent fits what the budget left
        assert stage["spent"] <= max(stage["delta_budget"], 0) + 1e-9
        assert stage["certificate_ratio"] is None or 0 < stage["certificate_ratio"] <= 1
    assert stages[6]["scheduled"] == pytest.approx(table.total)
    if start == "last_step":
        assert (steps[:, 0] == np.maximum(table.num_steps - delta_s, 0)).all()


def test_easy_steps_are_output_first():
    # two clusters, beta = 0: at stage 1 only the question whose next step is cheap fits the budget
    table = StepTable.from_lists(["easy", "hard"], [[0.1, 0.1, 1.0], [5.0, 5.0, 1.0]])
    cfg = ScheduleConfig(epochs=4, T=3, c0=0.0, p=1.0, beta=0.0)
    steps, stages = progressive_schedule(table, np.array([0, 1]), cfg)
    # D(1) = 12.2 / 9 = 1.36 after 2.0 already scheduled: nothing; D(2) = 5.42: "easy" hands over step 2
    assert steps.tolist() == [[2, 2, 1, 0], [2, 2, 2, 0]]
    assert stages[1]["selected"] == 0 and stages[2]["selected"] == 1


@pytest.fixture(scope="module")
def tiny_items():
    examples = [Example(f"q{i}", f"Tom has {i} apples and buys {i + 3} more. How many apples?", str(2 * i + 3),
                        [f"Tom starts with {i} apples. He buys {i + 3} more. So {i} + {i + 3} = {2 * i + 3}."
                         + " He counts them again." * (i % 3) + f" The answer is {2 * i + 3}"]) for i in range(10)]
    return examples, rationale_items(examples)


def manual_token_nll(model, item):
    prompt = question_prompt(item.question) + " "
    enc = model.tokenizer(prompt + item.rationale, return_offsets_mapping=True)
    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([enc["input_ids"]])).logits[0]
    nll = torch.nn.functional.cross_entropy(logits[:-1].float(), torch.tensor(enc["input_ids"][1:]), reduction="none")
    spans = [(s + len(prompt), e + len(prompt)) for s, e in split_steps(item.rationale).steps]
    return [nll[a - 1:b - 1].numpy() for a, b in char_spans_to_token_spans(enc["offset_mapping"], spans)]


def test_difficulty_pass_matches_unbatched_nll_and_follows_weights(tiny_models, tiny_items):
    model = load_model(str(tiny_models["causal"]))
    _, items = tiny_items
    uniform = step_difficulties(model, items, None, batch_size=4)
    for item in items[:4]:
        expected = [float(nll.mean()) for nll in manual_token_nll(model, item)]
        assert uniform[item.key] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    # a near-zero temperature makes each step's difficulty the NLL of its highest-weight token
    weights = {}
    for item in items:
        offsets = np.asarray(model.tokenizer(item.rationale, add_special_tokens=False,
                                             return_offsets_mapping=True)["offset_mapping"])
        weights[item.key] = TokenWeights(offsets, np.linspace(0.05, 0.95, len(offsets)))
    sharp = step_difficulties(model, items, weights, temperature=1e-4, batch_size=3)
    for item in items[:4]:
        assert sharp[item.key] == pytest.approx([float(nll[-1]) for nll in manual_token_nll(model, item)], rel=1e-3)
    with pytest.raises(DataError, match="no token weights"):
        step_difficulties(model, items, {items[0].key: weights[items[0].key]})


def test_seq2seq_student_gives_non_negative_difficulties(tiny_models, tiny_items):
    _, items = tiny_items
    out = step_difficulties(load_model(str(tiny_models["seq2seq"])), items[:3], None)
    assert all(len(out[it.key]) == len(split_steps(it.rationale).steps) and min(out[it.key]) > 0 for it in items[:3])


def test_schedule_file_contract_and_curricula(tiny_models, tiny_items, tmp_path):
    _, items = tiny_items
    cfg = ScheduleConfig(epochs=6, clusters=3, embedding="tfidf")
    schedule = build_schedule(items, cfg, student=str(tiny_models["causal"]))
    path = tmp_path / "schedule.json"
    write_schedule(path, schedule)
    data = json.loads(path.read_text())
    assert data["epochs"] == 6 and data["T"] == 3
    assert [s["t"] for s in data["stages"]] == list(range(6))
    assert {"t", "budget", "scheduled", "selected", "certificate_ratio"} <= set(data["stages"][1])
    assert set(data["input_steps"]) == set(data["num_steps"]) == set(data["difficulties"]) == {it.key for it in items}
    for key, steps in data["input_steps"].items():
        assert len(steps) == 6 and steps[0] == data["num_steps"][key] - 1 and steps[3:] == [0, 0, 0]
        assert len(data["difficulties"][key]) == data["num_steps"][key]
    assert data["stages"][0]["budget"] == pytest.approx(0.3 * sum(map(sum, data["difficulties"].values())), rel=1e-4)
    assert (tmp_path / "schedule.png").stat().st_size > 1000
    curriculum = load_curriculum(path)
    assert isinstance(curriculum, Curriculum) and not curriculum.needs_feedback
    assert curriculum.plan(1).input_steps == {k: v[1] for k, v in data["input_steps"].items()}
    assert curriculum.plan(50).input_steps == {k: 0 for k in data["input_steps"]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochs": 2}))
    with pytest.raises(DataError, match="'T'"):
        read_schedule(bad)


def test_adaptive_curriculum_re_estimates_difficulty_from_feedback():
    prior = {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.05, 1.0]}
    cfg = ScheduleConfig(method="acl", epochs=6, T=4, beta=0.0, c0=0.5, p=1.0, acl_mix=1.0, selection="greedy")
    plain, fed = (AdaptiveCurriculum(prior, {"a": 0, "b": 0}, cfg) for _ in range(2))
    assert plain.needs_feedback
    assert plain.plan(0).input_steps == fed.plan(0).input_steps == {"a": 2, "b": 2}
    # prior: D(1) = 3.025 + 0.378 / 2 leaves 1.21 over the 2.0 scheduled: a's cheaper step 2 (1.0) goes
    assert plain.plan(1).input_steps == {"a": 1, "b": 2}
    # the current student finds a hard and b easy: now b's step goes and a's (9.0) no longer fits
    fed.observe(0, {"a": [9.0, 9.0, 9.0], "b": [0.1, 0.1, 0.1]})
    assert fed.scheduler.table.total == pytest.approx(27.3)
    assert fed.plan(1).input_steps == {"a": 2, "b": 1}
    assert fed.plan(4).input_steps == {"a": 0, "b": 0}


def test_self_paced_and_in_sample_curricula():
    cfg = ScheduleConfig(method="spl", epochs=6, T=3)
    spl = SelfPacedCurriculum(cfg)
    assert spl.plan(0).step_weights is None  # no feedback yet: uniform
    spl.observe(0, {"a": [0.1, 3.0], "b": [0.2]})
    w = spl.plan(1).step_weights
    assert w["b"][0] > w["a"][0] > w["a"][1]  # confident steps of confident rationales weigh most
    assert np.mean(w["a"] + w["b"]) == pytest.approx(1.0)
    assert spl.plan(3).step_weights is None  # annealed to uniform at T
    icl = InSampleCurriculum(["a", "b"], ScheduleConfig(method="icl", epochs=6, T=3, icl_start=0.6))
    assert [icl.plan(e).input_token_fraction["a"] for e in range(4)] == pytest.approx([0.6, 0.4, 0.2, 0.0])


def test_load_curriculum_by_name(tiny_items):
    _, items = tiny_items
    assert load_curriculum(None).plan(0).input_steps == {}
    assert isinstance(load_curriculum("spl", items=items, epochs=4), SelfPacedCurriculum)
    icl = load_curriculum("icl", items=items, epochs=4)
    assert set(icl.plan(0).input_token_fraction) == {it.key for it in items}


def test_cli_end_to_end(tiny_models, tiny_items, tmp_path):
    from kpod.cli import main
    from kpod.data.loaders import write_examples

    examples, items = tiny_items
    data = tmp_path / "train.jsonl"
    write_examples(data, examples)
    model = load_model(str(tiny_models["causal"]))
    weights = {}
    for item in items:
        enc = model.tokenizer(item.rationale, add_special_tokens=False, return_offsets_mapping=True)
        weights[item.key] = TokenWeights(np.asarray(enc["offset_mapping"]), np.full(len(enc["input_ids"]), 0.5))
    write_weights(tmp_path / "w", weights)
    out = tmp_path / "s" / "schedule.json"
    rc = main(["schedule", "--data", str(data), "--weights", str(tmp_path / "w"), "--student",
               str(tiny_models["causal"]), "--epochs", "4", "--out", str(out), "--clusters", "2",
               "--selection", "ftgp", "--device", "cpu"])
    assert rc == 0
    schedule = read_schedule(out)
    assert schedule["T"] == 2 and schedule["config"]["selection"] == "ftgp"
    assert all(steps[2:] == [0, 0] for steps in schedule["input_steps"].values())
    assert out.with_suffix(".png").exists()
    # uniform weights inside a step equal the w.o.-sig-dif difficulties
    uniform = tmp_path / "u.json"
    assert main(["schedule", "--data", str(data), "--student", str(tiny_models["causal"]), "--epochs", "4",
                 "--out", str(uniform), "--device", "cpu", "--plots", "false"]) == 0
    plain = read_schedule(uniform)["difficulties"]
    assert all(plain[key] == pytest.approx(d, rel=1e-5, abs=1e-6) for key, d in schedule["difficulties"].items())
    assert not uniform.with_suffix(".png").exists()
    assert main(["schedule", "--data", str(data), "--epochs", "4", "--out", str(tmp_path / "x.json")]) == 2
