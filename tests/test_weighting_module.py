"""The weighting module (Eq. 2-7): shapes, straight-through masks, the gradient path from L_p to the
weight generator, learning on a task whose answer depends on one token, and a projection that starts the
same in every process."""

import random
import subprocess
import sys

import pytest
import torch

from kpod.data.example import RationaleItem
from kpod.weighting.config import WeighConfig
from kpod.weighting.module import PROJECTION_GRID
from kpod.weighting.weigh import build_parts, compute_weights, cue_ids, encode, make_batch, phase_of, train


def items(n, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        key = rng.choice("37")
        filler = rng.choice(["He buys more apples", "Each box holds pens", "She had some coins"])
        text = f"{filler}, so the box has {key} pens. Therefore, the answer is {'yes' if key == '7' else 'no'}."
        out.append(RationaleItem(f"k{i}", f"k{i}", "Is it seven?", text, "yes" if key == "7" else "no"))
    return out


@pytest.fixture(params=["causal", "seq2seq"])
def parts(request, tiny_models):
    cfg = WeighConfig(predictor=str(tiny_models[request.param]), batch_size=4, prefixes=2)
    return build_parts(str(tiny_models["causal"]), cfg), cfg


def test_shapes_and_straight_through_masks(parts):
    parts, cfg = parts
    rows = encode(parts, items(3))
    batch = make_batch(rows, cfg, 0, cue_ids(parts.predictor_tokenizer))
    assert [len(ks) for ks in batch.prefixes] == [3, 3, 3]
    out = parts.learner(batch)
    n = batch.rationale_ids.shape
    assert out["weights"].shape == n and out["masks"].shape == n
    assert ((out["weights"] > 0) & (out["weights"] < 1)).all()
    assert set(out["masks"].unique().tolist()) <= {0.0, 1.0}
    assert (out["masks"][~batch.rationale_valid] == 0).all()
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    # the masks' (hard) values carry the soft sample's gradient back to the generator
    (out["masks"] * torch.randn_like(out["masks"])).sum().backward()
    assert parts.generator.mlp[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("train_predictor", [True, False])
def test_answer_loss_alone_reaches_the_weight_generator(tiny_models, train_predictor):
    cfg = WeighConfig(predictor=str(tiny_models["seq2seq"]), train_predictor=train_predictor, prefixes=1)
    parts = build_parts(str(tiny_models["causal"]), cfg)
    batch = make_batch(encode(parts, items(4)), cfg, 0, cue_ids(parts.predictor_tokenizer))
    parts.learner(batch)["answer_loss"].backward()
    gen = parts.generator
    for name, param in [("attention", gen.attn.in_proj_weight), ("mlp", gen.mlp[0].weight),
                        ("mlp out", gen.mlp[2].weight), ("mask vector", parts.learner.mask_vector),
                        ("projection", parts.learner.projection.weight)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert gen.embed.weight.grad is None  # the student's embeddings stay frozen
    predictor_grads = [p.grad for p in parts.learner.predictor.parameters()]
    assert all(g is None for g in predictor_grads) != train_predictor


def test_written_weights_cover_every_token_with_the_answer_sentence_at_one(parts):
    parts, cfg = parts
    rows = {row.item.key: row for row in encode(parts, items(2))}
    written = dict(compute_weights(parts.generator, list(rows.values()), floor=0.2))
    assert written.keys() == rows.keys()
    for key, tw in written.items():
        row = rows[key]
        assert len(tw.weights) == len(row.offsets) > len(row.rationale)
        assert (tw.weights[: len(row.rationale)] >= 0.2).all() and (tw.weights < 1).all()
        assert tw.weights[len(row.rationale):] == pytest.approx(1.0, abs=1e-5)
        start = row.item.rationale.index("Therefore")
        assert all(end <= start for _, end in tw.offsets[: len(row.rationale)])


@pytest.mark.slow
def test_loss_falls_and_the_deciding_token_gets_higher_weights(tiny_models):
    cfg = WeighConfig(predictor=str(tiny_models["causal"]), train_predictor=True, batch_size=16, epochs=40, lr=1e-4,
                      predictor_lr=1e-2, prefixes=0, warmup=0.5, checkpoint_every=10**6)
    parts = build_parts(str(tiny_models["causal"]), cfg)
    rows = encode(parts, items(48))
    log = []
    original = parts.learner.forward
    parts.learner.forward = lambda batch, phase="mask": log.append(original(batch, phase)) or log[-1]
    train(parts, rows, cfg)
    first = sum(o["answer_loss"].item() for o in log[:10]) / 10
    last = sum(o["answer_loss"].item() for o in log[-10:]) / 10
    assert last < 0.5 * first
    key_weights, other = [], []
    by_key = {row.item.key: row for row in rows}
    for key, tw in compute_weights(parts.generator, rows):
        row = by_key[key]
        text = row.item.rationale
        for (a, b), w in zip(tw.offsets[: len(row.rationale)].tolist(), tw.weights.tolist()):
            (key_weights if text[a:b].strip() in "37" and text[a:b].strip() else other).append(w)
    assert sum(key_weights) / len(key_weights) > sum(other) / len(other) + 0.02


def test_predictor_with_another_tokenizer_reads_projected_student_embeddings(tiny_models, tmp_path):
    from kpod.models.local import ModelSize, build_local_models

    other = build_local_models(["Seven is 7 and three is 3. Therefore, the answer is yes or no."] * 8, tmp_path,
                               ModelSize(hidden=24, layers=1, heads=2, intermediate=48), vocab_size=300)
    cfg = WeighConfig(predictor=str(other["seq2seq"]), prefixes=1)
    parts = build_parts(str(tiny_models["causal"]), cfg)
    assert parts.student_tokenizer.get_vocab() != parts.predictor_tokenizer.get_vocab()
    assert parts.learner.projection.weight.shape == (24, parts.generator.dim)
    rows = encode(parts, items(2))
    tok = parts.predictor_tokenizer
    assert rows[0].answer[-1] == tok.eos_token_id and tok.decode(rows[0].answer[:-1]).strip() == rows[0].item.answer
    out = parts.learner(make_batch(rows, cfg, 0, cue_ids(parts.predictor_tokenizer)))
    out["answer_loss"].backward()
    assert parts.generator.mlp[0].weight.grad.abs().sum() > 0


def test_phases_run_the_predictor_warm_up_first_then_random_then_learned_masks():
    cfg = WeighConfig(warmup=0.25)
    assert [phase_of(s, 2, 8, cfg) for s in range(10)] == ["reader"] * 2 + ["warmup"] * 2 + ["mask"] * 6


def test_predictor_warm_up_trains_the_reader_and_leaves_the_generator_alone(tiny_models):
    cfg = WeighConfig(predictor=str(tiny_models["causal"]), batch_size=4, reader_epochs=1, epochs=1,
                      reader_lr=1e-2, warmup=0)
    parts = build_parts(str(tiny_models["causal"]), cfg)
    learner = parts.learner
    torch.manual_seed(0)
    reader = learner(make_batch(encode(parts, items(4)), cfg, 0, cue_ids(parts.predictor_tokenizer)), phase="reader")
    assert reader["loss"].item() == pytest.approx(reader["answer_loss"].item())  # L_p alone
    assert set(reader["masks"].unique().tolist()) <= {0.0, 1.0}

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    generator, predictor, projection = snapshot(learner.generator), snapshot(learner.predictor), snapshot(
        learner.projection)
    stats = train(parts, encode(parts, items(4)), cfg)  # 1 warm-up step, then 1 mask-learning step
    assert stats["reader_steps"] == 1 and stats["steps"] == 2

    def changed(before, module):
        return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))

    assert changed(predictor, learner.predictor) and changed(projection, learner.projection)
    assert changed(generator, learner.generator)  # by the mask-learning step
    assert not any(p.requires_grad for p in learner.predictor.parameters())  # frozen again afterwards
    after_warm_up = snapshot(learner.predictor)
    cfg.reader_epochs = 0
    train(parts, encode(parts, items(4)), cfg)  # mask learning only: the predictor stays frozen
    assert not changed(after_warm_up, learner.predictor)


def test_scored_answer_continues_the_answer_sentence_for_causal_predictors(parts):
    parts, _ = parts
    tokenizer = parts.predictor_tokenizer
    row = encode(parts, items(1))[0]
    text = tokenizer.decode(row.answer)
    if parts.learner.is_seq2seq:  # " N" then EOS, the target a seq2seq model is trained on
        assert row.answer[-1] == tokenizer.eos_token_id
        assert text.replace(tokenizer.eos_token, "").strip() == row.item.answer
    else:  # " N." as the rationales end, never an EOS the model did not see after the number
        assert tokenizer.eos_token_id not in row.answer and text.strip() == f"{row.item.answer}."


def test_weights_and_warm_up_masks_start_at_init_keep(tiny_models):
    cfg = WeighConfig(predictor=str(tiny_models["causal"]), batch_size=8, init_keep=0.9)
    parts = build_parts(str(tiny_models["causal"]), cfg)
    batch = make_batch(encode(parts, items(8)), cfg, 0, cue_ids(parts.predictor_tokenizer))
    torch.manual_seed(0)
    out = parts.learner(batch, phase="warmup")
    valid = batch.rationale_valid
    assert out["weights"][valid].mean().item() == pytest.approx(0.9, abs=0.05)
    assert out["masks"][valid].mean().item() == pytest.approx(0.9, abs=0.1)


SAVE_PROJECTION = """
import sys, torch
from kpod.weighting.config import WeighConfig
from kpod.weighting.weigh import build_parts
parts = build_parts(sys.argv[1], WeighConfig(predictor=sys.argv[1]))
torch.save(parts.learner.projection.weight.detach(), sys.argv[2])
"""


def test_shared_vocabulary_projection_is_the_rounded_least_squares_map_in_every_process(tiny_models, tmp_path):
    model = str(tiny_models["causal"])
    parts = build_parts(model, WeighConfig(predictor=model))
    source = parts.generator.embed.weight.detach().double()
    target = parts.learner.predictor.get_input_embeddings().weight.detach().double()
    system = torch.cat([source, torch.ones(len(source), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(system, target).solution
    expected = (torch.round(solution * PROJECTION_GRID) / PROJECTION_GRID).float()
    assert torch.equal(parts.learner.projection.weight, expected[:-1].T)
    assert torch.equal(parts.learner.projection.bias, expected[-1])
    # LAPACK's last bits differ between processes; the rounded map must not
    subprocess.run([sys.executable, "-c", SAVE_PROJECTION, model, str(tmp_path / "p.pt")], check=True,
                   capture_output=True)
    assert torch.equal(torch.load(tmp_path / "p.pt"), parts.learner.projection.weight.detach())
