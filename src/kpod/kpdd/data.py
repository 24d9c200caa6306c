"""KPDD teacher data: key points and solutions per question, filtered, with kept/dropped counts.

Candidates come from one of three sources:

- "testbed": the testbed's per-problem `kpdd` field (core question, facts, program) and its teacher
  rationales (one path per question; the injected wrong rationales are filtered out);
- "calculator": GSM8K-style solutions with calculator annotations ("48/2 = <<48/2=24>>24"): the
  annotations become a program (`formats.program_from_calculations`), the solution text without them
  the CoT, and the key points are read off the question (`heuristic_key_points`; an assumption: no
  teacher wrote them);
- "teacher": a teacher model prompted few-shot (`kpdd.prompts`), `paths` samples per question and
  mode, through kpod's teacher client (any OpenAI-compatible endpoint) or a local Hugging Face model.

Filtering (the paper keeps only paths whose final answer is right): a CoT path must state the gold
answer; a PoT program must run in the sandbox and return it. Every dropped candidate is counted under
its reason: no_key_points, no_solution, request_failed, no_answer, wrong_answer, program_error,
program_timeout, duplicate.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from kpod.data.answers import answers_match, extract_answer
from kpod.data.example import Example
from kpod.data.prompts import answer_sentence
from kpod.errors import DataError
from kpod.io import read_jsonl, write_json, write_jsonl
from kpod.kpdd.config import KpddConfig
from kpod.kpdd.formats import (KeyPoints, parse_program, program_from_calculations, strip_answer_sentence)
from kpod.kpdd.prompts import STOP, parse_teacher_response, teacher_prompt
from kpod.kpdd.sandbox import SandboxLimits, run_programs
from kpod.progress import progress

DATA_FILE = "kpdd_data.jsonl"
STATS_FILE = "kpdd_data_stats.json"
DROP_REASONS = ("no_key_points", "no_solution", "request_failed", "no_answer", "wrong_answer", "program_error",
                "program_timeout", "duplicate")


@dataclass
class Candidate:
    """One reasoning path before filtering: key points and a raw solution (CoT text or program)."""

    example: Example
    mode: str
    source: str
    sample: int
    key_points: KeyPoints | None
    solution: str | None
    failed: bool = False  # the teacher request failed


@dataclass
class KpddRecord:
    """One kept path: what the two students train on."""

    key: str
    example_id: str
    question: str
    answer: str
    mode: str
    core_question: str
    facts: list[str]
    target: str  # CoT: rationale + answer sentence; PoT: the program
    source: str

    @property
    def key_points(self) -> KeyPoints:
        return KeyPoints(self.core_question, self.facts)

    def to_json(self) -> dict:
        return asdict(self)


def read_records(path: str | Path) -> list[KpddRecord]:
    fields = [f for f in KpddRecord.__dataclass_fields__]
    out = []
    for line, record in read_jsonl(path, required=fields):
        if record["mode"] not in ("cot", "pot"):
            raise DataError(f"mode must be cot or pot, got {record['mode']!r}", path=path, line=line, field="mode")
        if not isinstance(record["facts"], list):
            raise DataError("facts must be a list", path=path, line=line, field="facts")
        out.append(KpddRecord(**{k: record[k] for k in fields}))
    return out


# ---------------------------------------------------------------------------------------------------
# Sources

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'$])")
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"\n?####.*$", re.S)


def heuristic_key_points(question: str) -> KeyPoints:
    """Key points read off a question (the "calculator" source's assumption): the last sentence with
    a question mark is the core question, every other sentence a fact."""
    sentences = [s.strip() for s in _SENTENCE_END.split(question.strip()) if s.strip()]
    asks = [i for i, s in enumerate(sentences) if "?" in s]
    core = asks[-1] if asks else len(sentences) - 1
    return KeyPoints(sentences[core] if sentences else question.strip(),
                     [s for i, s in enumerate(sentences) if i != core])


def calculator_solution(example: Example) -> str | None:
    """The annotated solution of a GSM8K-style example: a rationale or a `meta` string holding "<<"."""
    texts = list(example.rationales) + [v for v in example.meta.values() if isinstance(v, str)]
    return next((t for t in texts if "<<" in t), None)


def testbed_candidates(examples: list[Example], modes: Iterable[str]) -> list[Candidate]:
    out = []
    for ex in examples:
        key_points = KeyPoints.from_json(ex.kpdd) if ex.kpdd and ex.kpdd.get("core_question") else None
        for mode in modes:
            if mode == "cot":
                solutions = ex.rationales or [None]
            else:
                solutions = [(ex.kpdd or {}).get("program")]
            out += [Candidate(ex, mode, "testbed", k, key_points, s) for k, s in enumerate(solutions)]
    return out


def calculator_candidates(examples: list[Example], modes: Iterable[str]) -> list[Candidate]:
    out = []
    for ex in examples:
        solution = calculator_solution(ex)
        key_points = heuristic_key_points(ex.question)
        for mode in modes:
            if solution is None:
                text = None
            elif mode == "cot":
                final = extract_answer(solution, mode="strict")
                text = _FINAL.sub("", _ANNOTATION.sub("", solution)).replace("\n", " ").strip()
                text = f"{text} {answer_sentence(final)}" if final else text
            else:
                text = program_from_calculations(solution)
            out.append(Candidate(ex, mode, "calculator", 0, key_points, text))
    return out


def teacher_candidates(examples: list[Example], modes: Iterable[str], cfg: KpddConfig) -> list[Candidate]:
    """`cfg.paths` sampled responses per (question, mode) from the teacher."""
    jobs = [(ex, mode, k) for ex in examples for mode in modes for k in range(cfg.paths)]
    prompts = [teacher_prompt(ex.question, mode) for ex, mode, _ in jobs]
    seeds = [cfg.seed + k for _, _, k in jobs]
    if cfg.teacher_backend == "hf":
        responses = _local_responses(prompts, seeds, cfg)
    else:
        responses = asyncio.run(_endpoint_responses(prompts, seeds, cfg))
    out = []
    for (ex, mode, k), response in zip(jobs, responses):
        if response is None:
            out.append(Candidate(ex, mode, "teacher", k, None, None, failed=True))
            continue
        key_points, solution = parse_teacher_response(response, mode)
        out.append(Candidate(ex, mode, "teacher", k, key_points, solution))
    return out


def _teach_config(cfg: KpddConfig):
    from kpod.teacher.config import TeachConfig

    return TeachConfig(dataset=cfg.data or "kpdd", model=cfg.teacher_model, backend=cfg.teacher_backend,
                       endpoint=cfg.teacher_endpoint, api=cfg.teacher_api, samples=cfg.paths,
                       temperature=cfg.temperature, max_tokens=cfg.teacher_max_tokens, concurrency=cfg.concurrency,
                       batch_size=cfg.eval_batch_size, seed=cfg.seed)


async def _endpoint_responses(prompts: list[str], seeds: list[int], cfg: KpddConfig) -> list[str | None]:
    from kpod.teacher.client import RequestFailed, TeacherClient

    teach = _teach_config(cfg)
    client = TeacherClient(teach)
    limit = asyncio.Semaphore(teach.concurrency)
    bar = progress(total=len(prompts), desc="teacher", unit="req")

    async def one(prompt: str, seed: int) -> str | None:
        async with limit:
            try:
                completion = await client.request(prompt, max_tokens=teach.max_tokens, stop=STOP,
                                                  temperature=teach.temperature,
                                                  seed=seed if teach.temperature > 0 else None)
                return completion.text
            except RequestFailed:
                return None
            finally:
                bar.update(1)

    try:
        return list(await asyncio.gather(*(one(p, s) for p, s in zip(prompts, seeds))))
    finally:
        bar.close()
        await client.close()


def _local_responses(prompts: list[str], seeds: list[int], cfg: KpddConfig) -> list[str | None]:
    from kpod.teacher.hf_backend import LocalGenerator

    teach = _teach_config(cfg)
    generator = LocalGenerator(teach.model, batch_size=teach.batch_size)
    out: list[str | None] = [None] * len(prompts)
    for seed in sorted(set(seeds)):  # one sampling seed per path index
        idx = [i for i, s in enumerate(seeds) if s == seed]
        completions = generator.complete([prompts[i] for i in idx], max_tokens=teach.max_tokens,
                                         temperature=teach.temperature, top_p=teach.top_p, stop=STOP, seed=seed)
        for i, completion in zip(idx, completions):
            out[i] = completion.text
    return out


# ---------------------------------------------------------------------------------------------------
# Filtering


def filter_candidates(candidates: list[Candidate], limits: SandboxLimits | None = None,
                      workers: int = 2) -> tuple[list[KpddRecord], dict]:
    """Keep the paths whose answer is right (CoT: as stated; PoT: as the sandboxed program returns
    it); returns the kept records and {mode: {"candidates", "kept", "dropped": {reason: n}}}."""
    verdicts: list[tuple[str | None, str | None]] = [(None, None)] * len(candidates)  # (target, drop reason)
    programs = []
    for i, cand in enumerate(candidates):
        if cand.failed:
            verdicts[i] = (None, "request_failed")
        elif cand.key_points is None or not cand.key_points.core_question:
            verdicts[i] = (None, "no_key_points")
        elif not cand.solution:
            verdicts[i] = (None, "no_solution")
        elif cand.mode == "cot":
            verdicts[i] = _check_cot(cand)
        else:
            programs.append(i)
    results = run_programs([parse_program(candidates[i].solution) for i in programs], limits, workers,
                           desc="sandbox") if programs else []
    for i, result in zip(programs, results):
        cand = candidates[i]
        if not result.ok:
            verdicts[i] = (None, "program_timeout" if result.error == "timeout" else "program_error")
        elif not answers_match(result.answer, cand.example.answer):
            verdicts[i] = (None, "wrong_answer")
        else:
            verdicts[i] = (parse_program(cand.solution), None)

    records, seen = [], set()
    stats = {mode: {"candidates": 0, "kept": 0, "dropped": dict.fromkeys(DROP_REASONS, 0)}
             for mode in sorted({c.mode for c in candidates})}
    per_example: Counter = Counter()
    for cand, (target, reason) in zip(candidates, verdicts):
        stats[cand.mode]["candidates"] += 1
        signature = (cand.example.id, cand.mode, target)
        if reason is None and signature in seen:
            reason = "duplicate"
        if reason is not None:
            stats[cand.mode]["dropped"][reason] += 1
            continue
        seen.add(signature)
        stats[cand.mode]["kept"] += 1
        index = per_example[(cand.example.id, cand.mode)]
        per_example[(cand.example.id, cand.mode)] += 1
        records.append(KpddRecord(f"{cand.example.id}#{cand.mode}{index}", cand.example.id, cand.example.question,
                                  cand.example.answer, cand.mode, cand.key_points.core_question,
                                  list(cand.key_points.facts), target, cand.source))
    for mode, counts in stats.items():
        counts["questions_kept"] = len({r.example_id for r in records if r.mode == mode})
    return records, stats


def _check_cot(cand: Candidate) -> tuple[str | None, str | None]:
    stated = extract_answer(cand.solution, mode="strict") or extract_answer(cand.solution, mode="flexible")
    if stated is None:
        return None, "no_answer"
    if not answers_match(stated, cand.example.answer):
        return None, "wrong_answer"
    rationale = strip_answer_sentence(cand.solution)
    return f"{rationale} {answer_sentence(cand.example.answer)}".strip(), None


# ---------------------------------------------------------------------------------------------------


def choose_source(examples: list[Example], source: str) -> str:
    """The source "auto" resolves to: testbed when the examples carry key points, else calculator."""
    if source != "auto":
        return source
    return "testbed" if any(ex.kpdd for ex in examples) else "calculator"


def build_teacher_data(examples: list[Example], cfg: KpddConfig, out_dir: str | Path) -> tuple[list[KpddRecord], dict]:
    """Make, filter and write the teacher data: OUT/kpdd_data.jsonl and
    OUT/kpdd_data_stats.json."""
    source = choose_source(examples, cfg.source)
    if source == "testbed":
        candidates = testbed_candidates(examples, cfg.modes)
    elif source == "calculator":
        candidates = calculator_candidates(examples, cfg.modes)
    else:
        candidates = teacher_candidates(examples, cfg.modes, cfg)
    records, stats = filter_candidates(candidates, cfg.sandbox_limits(), cfg.sandbox_workers)
    stats = {"source": source, "questions": len(examples), "modes": stats}
    out_dir = Path(out_dir)
    write_jsonl(out_dir / DATA_FILE, (r.to_json() for r in records))
    write_json(out_dir / STATS_FILE, stats)
    return records, stats
