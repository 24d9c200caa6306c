"""The rationale token weighting module of KPOD (Sec. 3.3, Eq. 2-7).

`WeightGenerator` (Eq. 2-3): the student's input embedding layer (frozen, so the module reads the
student's own tokens), one self-attention layer, and a two-layer MLP with a sigmoid give the keep
probability w_j of every rationale token.

`MaskLearner` (Eq. 4-7): samples straight-through Gumbel masks m_j from w_j, replaces masked
rationale tokens by a learned mask vector, projects the question (unmasked) followed by a prefix of
the masked rationale with a learned linear map into the input embedding space of an answer predictor
(any Hugging Face seq2seq or causal model), and scores the answer y under the predictor. The
predictor reads `inputs_embeds`, so its tokenizer may differ from the student's; the answer tokens
are the predictor's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from kpod.data.prompts import ANSWER_TRIGGER, question_prompt
from kpod.weighting.losses import gumbel_mask, mask_ratio_loss, prefix_answer_loss, significance_weights, total_loss


def sinusoid_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """Fixed sine/cosine position codes (length, dim): any length, no parameters."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return out


class WeightGenerator(nn.Module):
    """Eq. 2-3: e = Att(Emb(r)), w_j = sigmoid(f_w(e_j)) with f_w a two-layer MLP.

    Emb is a frozen copy of the student's input embedding matrix. The student's embeddings carry
    no position (RoPE students), so scaled sine codes are added before the attention layer, letting
    it tell "12 + 30 = 42" from "42 = 30 + 12"."""

    def __init__(self, embedding_weight: torch.Tensor, heads: int = 4, hidden: int = 256, init_keep: float = 0.5):
        super().__init__()
        dim = embedding_weight.shape[1]
        self.embed = nn.Embedding.from_pretrained(embedding_weight.detach().float().clone(), freeze=True)
        self.in_norm = nn.LayerNorm(dim)
        self.pos_scale = nn.Parameter(torch.tensor(0.1))
        self.attn = nn.MultiheadAttention(dim, heads if dim % heads == 0 else 1, batch_first=True)
        self.out_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.init_keep = init_keep
        with torch.no_grad():  # every w_j starts near init_keep
            self.mlp[2].bias.fill_(math.log(init_keep / (1 - init_keep)))

    @property
    def dim(self) -> int:
        return self.embed.embedding_dim

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Keep probabilities w (B, N) of rationale token ids (B, N); `valid` marks real tokens."""
        x = self.in_norm(self.embed(ids)) + self.pos_scale * sinusoid_positions(ids.shape[1], self.dim, ids.device)
        ignore = ~valid.bool()
        ignore[ignore.all(dim=1)] = False  # an empty rationale: attend anywhere rather than produce NaN
        attended, _ = self.attn(x, x, x, key_padding_mask=ignore, need_weights=False)
        e = self.out_norm(x + attended)
        return significance_weights(self.mlp(e).squeeze(-1))


@dataclass
class Batch:
    """Token ids of B rationales. Student tokens: question prompt and rationale; predictor tokens:
    the answers and the answer cue (causal predictors). `prefixes[b]` lists the prefix lengths k of
    Eq. 5 for example b, the full length first."""

    question_ids: torch.Tensor  # (B, Lq), padded
    question_valid: torch.Tensor
    rationale_ids: torch.Tensor  # (B, N)
    rationale_valid: torch.Tensor
    answer_ids: list[list[int]]
    prefixes: list[list[int]]
    cue_ids: list[int]

    def to(self, device) -> Batch:
        return Batch(self.question_ids.to(device), self.question_valid.to(device), self.rationale_ids.to(device),
                     self.rationale_valid.to(device), self.answer_ids, self.prefixes, self.cue_ids)


def pad_ids(rows: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into (ids, valid) tensors."""
    width = max([len(r) for r in rows] + [1])
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    valid = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        valid[i, : len(row)] = True
    return ids, valid


def question_ids(tokenizer, question: str) -> list[int]:
    return tokenizer(question_prompt(question), add_special_tokens=False)["input_ids"]


def rationale_tokens(tokenizer, rationale: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Student token ids of a rationale and each token's character span within it."""
    enc = tokenizer(rationale, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], [tuple(span) for span in enc["offset_mapping"]]


def answer_ids(tokenizer, answer: str, is_seq2seq: bool) -> list[int]:
    """Predictor token ids of the answer y: the tokens scored by Eq. 5.

    A seq2seq predictor's target is " N" then EOS. A causal predictor continues the answer cue
    (" Therefore, the answer is"), so its target is " N." as the answer sentence ends in the
    rationales it learned from: scoring EOS right after N would score a token such a model never
    saw there, and that one format token then dominates the loss."""
    if not is_seq2seq:
        return tokenizer(f" {answer}.", add_special_tokens=False)["input_ids"]
    ids = tokenizer(f" {answer}", add_special_tokens=False)["input_ids"]
    return ids + [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else ids


def cue_ids(tokenizer) -> list[int]:
    """Predictor ids of " Therefore, the answer is": a causal predictor reads them after the
    rationale prefix, so it knows where the answer starts (they are input, not scored)."""
    return tokenizer(f" {ANSWER_TRIGGER}", add_special_tokens=False)["input_ids"]


PROJECTION_GRID = 2.0**20  # the least-squares projection is rounded to multiples of 1 / PROJECTION_GRID


class MaskLearner(nn.Module):
    """Eq. 4-7 around a `WeightGenerator`: masks, mask vector, projection, answer predictor."""

    def __init__(self, generator: WeightGenerator, predictor: nn.Module, is_seq2seq: bool, *, tau: float = 1.0,
                 alpha: float = 0.5, train_predictor: bool = True, vocab_match: bool = False):
        super().__init__()
        self.generator = generator
        self.predictor = predictor
        self.is_seq2seq = is_seq2seq
        self.tau, self.alpha, self.train_predictor = tau, alpha, train_predictor
        target = predictor.get_input_embeddings().weight
        self.mask_vector = nn.Parameter(torch.zeros(generator.dim))
        self.projection = nn.Linear(generator.dim, target.shape[1])
        self._init_projection(vocab_match)
        predictor.requires_grad_(train_predictor)

    @torch.no_grad()
    def _init_projection(self, vocab_match: bool) -> None:
        """Start the projection where the predictor can already read it: with one shared vocabulary,
        the least-squares map of student onto predictor embeddings; otherwise a random map rescaled
        to the predictor's embedding scale."""
        source = self.generator.embed.weight
        target = self.predictor.get_input_embeddings().weight.detach().float().to(source.device)
        if vocab_match and source.shape[0] == target.shape[0]:
            # LAPACK's answer differs in its last bits from one process to the next (memory alignment),
            # and mask learning amplifies that into different weights: solve in float64 and round to a
            # grid far coarser than that noise, so every process starts from the same projection
            ones = torch.ones(source.shape[0], 1, device=source.device)
            system = torch.cat([source, ones], dim=1).double()
            solution = torch.linalg.lstsq(system, target.double()).solution
            solution = (torch.round(solution * PROJECTION_GRID) / PROJECTION_GRID).float()
            self.projection.weight.copy_(solution[:-1].T)
            self.projection.bias.copy_(solution[-1])
        else:
            scale = target.std() / self.projection(source[:4096]).std().clamp_min(1e-8)
            self.projection.weight.mul_(scale)
            self.projection.bias.zero_()

    def trainable_groups(self, lr: float, predictor_lr: float) -> list[dict]:
        own = [p for name, p in self.named_parameters() if p.requires_grad and not name.startswith("predictor.")]
        groups = [{"params": own, "lr": lr}]
        if self.train_predictor:
            groups.append({"params": list(self.predictor.parameters()), "lr": predictor_lr})
        return groups

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.train_predictor:
            self.predictor.eval()
        return self

    def reading(self, on: bool) -> None:
        """Switch the predictor warm-up (reader phase) on or off: during it the predictor learns even
        when `train_predictor` is off, so it becomes a reader that tolerates masked rationales."""
        self.predictor.requires_grad_(on or self.train_predictor)

    def forward(self, batch: Batch, phase: str = "mask") -> dict[str, torch.Tensor]:
        """Losses of Eq. 5-7 on one batch, with the weights w (B, N) and the sampled masks m (B, N,
        exactly 0/1 forward). `phase` "mask" samples masks from w (Eq. 4). "warmup" draws them with the
        generator's starting keep probability instead, so the predictor side adapts before the
        generator is trained.
        "reader" (the predictor warm-up) keeps each token with a probability drawn uniformly from
        [0, 1] per example, so the predictor learns to answer from rationales masked at every ratio;
        its loss is L_p alone (L_m does not depend on the random masks)."""
        valid = batch.rationale_valid
        weights = self.generator(batch.rationale_ids, valid)
        if phase == "mask":
            masks = gumbel_mask(weights, self.tau)
        elif phase == "warmup":
            masks = gumbel_mask(torch.full_like(weights, self.generator.init_keep), self.tau)
        elif phase == "reader":
            masks = torch.bernoulli(torch.rand(len(weights), 1, device=weights.device).expand_as(weights))
        else:
            raise ValueError(f"unknown phase {phase!r}")
        masks = masks * valid
        embed = self.generator.embed
        m = masks.unsqueeze(-1)
        rationale = m * embed(batch.rationale_ids) + (1 - m) * self.mask_vector
        dtype = self.predictor.get_input_embeddings().weight.dtype
        rationale = self.projection(rationale).to(dtype)
        question = self.projection(embed(batch.question_ids)).to(dtype)
        nll = self.answer_nll(question, batch.question_valid.sum(1).tolist(), rationale, batch)
        full, sampled = nll[:, 0], nll[:, 1:]
        lengths = valid.sum(1)
        answer_loss = prefix_answer_loss(full, sampled, lengths)
        ratio_loss = mask_ratio_loss(masks, valid)
        loss = answer_loss.mean() if phase == "reader" else total_loss(answer_loss, ratio_loss, self.alpha)
        return {"loss": loss, "answer_loss": answer_loss.mean(), "ratio_loss": ratio_loss.mean(),
                "weights": weights, "masks": masks}

    def answer_nll(self, question: torch.Tensor, question_lengths: list[int], rationale: torch.Tensor,
                   batch: Batch) -> torch.Tensor:
        """Answer NLL, summed over answer tokens, for every (example, prefix): (B, 1 + K)."""
        inputs, answers, owners = [], [], []
        for b, ks in enumerate(batch.prefixes):
            for k in ks:
                inputs.append(torch.cat([question[b, : question_lengths[b]], rationale[b, :k]]))
                answers.append(torch.tensor(batch.answer_ids[b], device=question.device))
                owners.append(b)
        if self.is_seq2seq:
            embeds = pad_sequence(inputs, batch_first=True)
            attention = pad_sequence([torch.ones(len(x), device=x.device, dtype=torch.long) for x in inputs],
                                     batch_first=True)
            labels = pad_sequence(answers, batch_first=True, padding_value=-100)
            logits = self.predictor(inputs_embeds=embeds, attention_mask=attention, labels=labels).logits
        else:
            answer_embed = self.predictor.get_input_embeddings()
            cue = answer_embed(torch.tensor(batch.cue_ids, dtype=torch.long, device=question.device))
            inputs = [torch.cat([x, cue]) for x in inputs]
            seqs = [torch.cat([x, answer_embed(a)]) for x, a in zip(inputs, answers)]
            embeds = pad_sequence(seqs, batch_first=True)
            attention = pad_sequence([torch.ones(len(s), device=s.device, dtype=torch.long) for s in seqs],
                                     batch_first=True)
            full_labels = [torch.cat([torch.full((len(x),), -100, device=x.device), a])
                           for x, a in zip(inputs, answers)]
            labels = pad_sequence(full_labels, batch_first=True, padding_value=-100)[:, 1:]
            logits = self.predictor(inputs_embeds=embeds, attention_mask=attention).logits[:, :-1]
        token_nll = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
        per_sequence = token_nll.sum(dim=1)
        return per_sequence.view(len(batch.prefixes), -1)
