"""The synthetic reasoning testbed: multi-step arithmetic word problems with labelled teacher rationales.

Every problem follows one quantity (a person's apples, liters of juice, ...) through a chain of
operations (+ - * / with integer results), stated one per sentence among distractor sentences that carry
irrelevant numbers. The teacher rationale spends one sentence per operation; in each, the keypoints
(the operands, the operator, the result and the entity) sit among reasoning-irrelevant filler drawn at
random ("just", "simply", "we can say that", ...), and it ends with "Therefore, the answer is N.".

Ground truth written with each problem:
- `keypoints`: [start, end] character spans of the keypoints in the rationale (scores learned weights);
- `meta.steps`: the character span of each step (the sentences `kpod.data.steps.split_steps` finds),
  `meta.num_steps`, and `meta.teacher_correct` / `meta.error_step` for the injected wrong steps;
- `kpdd`: the core question, the facts needed to solve it, and a Python program assigning `answer`.

`test_ood.jsonl` has more steps than any training problem. `kpod data synth --out DIR` writes
DIR/{train,dev,test,test_ood}.jsonl and DIR/synth_config.json; the same seed gives identical files.
"""

from __future__ import annotations

import argparse
import random
import string
from dataclasses import dataclass
from pathlib import Path

from kpod.config import add_config_arguments, config_from_args, field_help, to_dict
from kpod.data.example import Example
from kpod.data.prompts import answer_sentence
from kpod.errors import ConfigError
from kpod.io import write_json, write_jsonl
from kpod.progress import progress

SPLITS = ("train", "dev", "test", "test_ood")
OPERATORS = ("+", "-", "*", "/")


@dataclass
class SynthConfig:
    """Size and difficulty of the testbed (see docs/testbed.md for how each setting changes it)."""

    seed: int = field_help("random seed; the same seed writes identical files", 0)
    train_size: int = field_help("problems in train.jsonl", 2000)
    dev_size: int = field_help("problems in dev.jsonl", 200)
    test_size: int = field_help("problems in test.jsonl", 300)
    ood_size: int = field_help("problems in test_ood.jsonl", 300)
    min_steps: int = field_help("fewest reasoning steps of a train/dev/test problem", 2)
    max_steps: int = field_help("most reasoning steps of a train/dev/test problem", 3)
    ood_min_steps: int = field_help("fewest steps of an out-of-distribution problem (> max_steps)", 4)
    ood_max_steps: int = field_help("most steps of an out-of-distribution problem", 5)
    max_value: int = field_help("largest quantity a problem ever holds (smaller is easier)", 30)
    max_operand: int = field_help("largest number added or subtracted in one step", 9)
    max_factor: int = field_help("largest multiplier or divisor", 3)
    operators: str = field_help("operators problems may use, out of '+-*/'", "+-*/")
    filler_rate: float = field_help("probability that each filler slot of a step holds a filler phrase", 0.5)
    error_rate: float = field_help("fraction of teacher rationales with one wrong step (wrong answer)", 0.1)
    max_distractors: int = field_help("most distractor sentences per question (0 to max, uniformly)", 1)

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            raise ConfigError(f"need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        if not self.max_steps < self.ood_min_steps <= self.ood_max_steps:
            raise ConfigError("need max_steps < ood_min_steps <= ood_max_steps: the OOD test must be longer")
        if not self.operators or set(self.operators) - set(OPERATORS) or "+" not in self.operators:
            raise ConfigError(f"operators must be a subset of '+-*/' that includes '+', got {self.operators!r}")
        for name in ("filler_rate", "error_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1]")
        if self.max_value < 10 or not 1 <= self.max_operand < self.max_value or self.max_factor < 2:
            raise ConfigError("need max_value >= 10, 1 <= max_operand < max_value and max_factor >= 2")
        if min(self.train_size, self.dev_size, self.test_size, self.ood_size, self.max_distractors) < 0:
            raise ConfigError("sizes and max_distractors must not be negative")


NAMES = [("Tom", "him"), ("Sara", "her"), ("Ben", "him"), ("Lily", "her"), ("Omar", "him"), ("Mia", "her"),
         ("Jack", "him"), ("Nora", "her"), ("Leo", "him"), ("Emma", "her"), ("Ravi", "him"), ("Zoe", "her")]
ITEMS = ["apples", "marbles", "stickers", "cookies", "pencils", "books", "coins", "stamps", "shells",
         "cards", "eggs", "candles", "liters of juice", "meters of rope", "kilograms of rice", "dollars"]
CONTAINERS = ["boxes", "bags", "packs", "baskets", "jars"]
OTHERS = ["a friend", "a neighbor", "the teacher", "a classmate", "a cousin"]

# Question sentences stating an operation; {n} is the step's number.
ASK = {
    "+": ["{Name} buys {n} more {item}.", "{Name} finds {n} more {item}.", "A friend gives {obj} {n} {item}.",
          "Then {name} gets {n} more {item}.", "{Name} receives {n} {item} as a gift."],
    "-": ["{Name} gives {n} {item} to {other}.", "{Name} uses {n} {item}.", "Then {name} loses {n} {item}.",
          "{Name} sells {n} {item}.", "{Name} gives away {n} of the {item}."],
    "*": ["Then the number of {item} {name} has grows {n} times.", "{Name} ends up with {n} times as many {item}.",
          "The {item} of {name} are multiplied by {n}."],
    "/": ["{Name} splits the {item} into {n} equal parts and keeps one part.",
          "{Name} shares the {item} equally among {n} people and keeps one share.",
          "Only one of {n} equal parts of the {item} stays with {name}."],
}
# The teacher's account of the operation inside a rationale step.
TELL = {
    "+": ["{name} gets {n} more", "{name} adds {n}", "{n} more come in"],
    "-": ["{name} takes away {n}", "{n} are gone", "{name} removes {n}"],
    "*": ["the amount grows {n} times", "{name} multiplies by {n}", "there are {n} times as many"],
    "/": ["{name} keeps one of {n} parts", "the amount is divided by {n}", "{name} splits it {n} ways"],
}
STARTS = ["{Name} has {a} {item}.", "{Name} starts with {a} {item}.", "At first, {name} owns {a} {item}."]
PRODUCT_START = ["{Name} has {k} {container} with {m} {item} in each.",
                 "{Name} buys {k} {container}, and each holds {m} {item}."]
PRODUCT_TELL = ["there are {k} {container} with {m} each", "{k} {container} hold {m} each"]
FIRST_TELL = ["{name} starts with {a}", "at first there are {a}"]
QUESTIONS = ["How many {item} does {name} have now?", "How many {item} does {name} have at the end?",
             "How many {item} are left with {name} in the end?"]
DISTRACTORS = ["{Name} is {d} years old.", "The shop is {d} meters away.", "{Other} has {d} {other_item}.",
               "{Name} walked for {d} minutes that day.", "There are {d} {other_item} on the shelf.",
               "The bus ride takes {d} minutes."]
PREFIX_FILLER = ["Now, ", "Next, ", "It is clear that ", "We can say that ", "Of course, ", "Well, ",
                 "Note that ", "As we see, ", "Okay, ", "Then, "]
MID_FILLER = ["just ", "simply ", "basically ", "clearly ", "really ", "easily "]
SUFFIX_FILLER = [" in total", " as expected", ", which is easy to check", ", as we can see", " for sure",
                 " at this point"]
CONNECTORS = [", so ", ", which means ", ", and so "]


@dataclass
class Step:
    """One operation: `left op right = result` (result may be wrong when the teacher errs)."""

    op: str
    left: int
    right: int
    result: int
    text_args: dict


def _apply(op: str, a: int, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]


def _choose_op(rng: random.Random, value: int, cfg: SynthConfig) -> tuple[str, int] | None:
    """An operator and operand that keep the value a whole number in [1, max_value]."""
    options = []
    if "+" in cfg.operators and value < cfg.max_value:
        options.append(("+", rng.randint(1, min(cfg.max_operand, cfg.max_value - value))))
    if "-" in cfg.operators and value > 1:
        options.append(("-", rng.randint(1, min(cfg.max_operand, value - 1))))
    factors = [k for k in range(2, cfg.max_factor + 1) if value * k <= cfg.max_value]
    if "*" in cfg.operators and factors:
        options.append(("*", rng.choice(factors)))
    divisors = [k for k in range(2, cfg.max_factor + 1) if value % k == 0]
    if "/" in cfg.operators and divisors:
        options.append(("/", rng.choice(divisors)))
    return rng.choice(options) if options else None


class _Writer:
    """Builds a text piece by piece while recording the character spans of its keypoints."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.keypoints: list[list[int]] = []

    def add(self, text: str, keypoint: bool = False) -> None:
        if keypoint:
            self.keypoints.append([self.length, self.length + len(text)])
        self.parts.append(text)
        self.length += len(text)

    def add_template(self, template: str, values: dict, keys: tuple[str, ...]) -> None:
        """Format `template`; the fields named in `keys` become keypoints."""
        for literal, field_name, _, _ in string.Formatter().parse(template):
            self.add(literal)
            if field_name is not None:
                self.add(str(values[field_name]), keypoint=field_name in keys)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, values: dict) -> str:
    return _cap(template.format(**values))


def _maybe(rng: random.Random, rate: float, choices: list[str]) -> str:
    return rng.choice(choices) if rng.random() < rate else ""


def make_problem(rng: random.Random, num_steps: int, cfg: SynthConfig, inject_error: bool) -> dict | None:
    """One problem as a dict of Example fields, or None when the random walk gets stuck."""
    name, obj = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    other_item = rng.choice([i for i in ITEMS if i != item])
    base = {"Name": name, "name": name, "obj": obj, "item": item,
            "other": rng.choice(OTHERS), "Other": _cap(rng.choice(OTHERS)), "other_item": other_item}

    steps: list[Step] = []
    product_start = "*" in cfg.operators and rng.random() < 0.3
    if product_start:
        k, m = rng.randint(2, cfg.max_factor), rng.randint(2, max(2, cfg.max_value // cfg.max_factor))
        value = k * m
        container = rng.choice(CONTAINERS)
        facts = [_fill(rng.choice(PRODUCT_START), {**base, "k": k, "m": m, "container": container})]
        steps.append(Step("*", k, m, value, {"kind": "product", "container": container}))
        program = [f"value = {k} * {m}"]
    else:
        value = rng.randint(max(2, cfg.max_value // 6), cfg.max_value // 2)
        facts = [_fill(rng.choice(STARTS), {**base, "a": value})]
        program = [f"value = {value}"]
    while len(steps) < num_steps:
        choice = _choose_op(rng, value, cfg)
        if choice is None:
            return None
        op, n = choice
        facts.append(_fill(rng.choice(ASK[op]), {**base, "n": n}))
        steps.append(Step(op, value, n, _apply(op, value, n), {"kind": "op"}))
        program.append(f"value = value {'//' if op == '/' else op} {n}")
        value = steps[-1].result
    answer = value

    sentences = list(facts)
    for _ in range(rng.randint(0, cfg.max_distractors)):
        d = rng.randint(2, cfg.max_value)
        sentences.insert(rng.randint(1, len(sentences)), _fill(rng.choice(DISTRACTORS), {**base, "d": d}))
    core_question = _fill(rng.choice(QUESTIONS), base)
    question = " ".join(sentences + [core_question])

    # Only a step with no division after it may err, so that every later step stays exact.
    last_division = max([i for i, s in enumerate(steps) if s.op == "/"], default=-1)
    error_step = rng.randrange(max(last_division, 0), num_steps) if inject_error else None
    rationale, keypoints, step_spans = _rationale(rng, steps, base, cfg, error_step)
    said = int(rationale[rationale.rindex(" ") + 1:-1])
    return {
        "question": question, "answer": str(answer), "rationales": [rationale], "keypoints": keypoints,
        "kpdd": {"core_question": core_question, "facts": facts, "program": "\n".join(program + ["answer = value"])},
        "meta": {"num_steps": num_steps, "steps": step_spans, "teacher_correct": said == answer,
                 "error_step": error_step, "operators": [s.op for s in steps]},
    }


def _wrong(rng: random.Random, right: int, lower: bool) -> int:
    """A result off by 1 to 3; below `right` only when `lower` (no later subtraction can then go negative)."""
    return right + rng.choice([d for d in (-3, -2, -1, 1, 2, 3) if d > 0 or (lower and right + d > 0)])


def _rationale(rng: random.Random, steps: list[Step], base: dict, cfg: SynthConfig,
               error_step: int | None) -> tuple[str, list[list[int]], list[list[int]]]:
    """The teacher's rationale: one sentence per step, keypoints among random filler.

    With `error_step`, that step's result is off by a few and later steps carry the wrong value on
    (their own arithmetic stays right), so the final answer is wrong.
    """
    w = _Writer()
    spans = []
    carried = None
    for i, step in enumerate(steps):
        left = step.left if carried is None else carried
        result = _apply(step.op, left, step.right)
        if i == error_step:
            result = _wrong(rng, result, lower=all(s.op != "-" for s in steps[i + 1:]))
        carried = result
        if i:
            w.add(" ")
        start = w.length
        prefix = _maybe(rng, cfg.filler_rate, PREFIX_FILLER)
        if step.text_args.get("kind") == "product":
            tell = rng.choice(PRODUCT_TELL)
            args = {**base, "k": step.left, "m": step.right, "container": step.text_args["container"]}
        elif i == 0:
            tell = rng.choice(FIRST_TELL) + ", and " + rng.choice(TELL[step.op])
            args = {**base, "a": left, "n": step.right}
        else:
            tell = rng.choice(TELL[step.op])
            args = {**base, "n": step.right}
        w.add(prefix)
        head = _Writer()
        head.add_template(tell, args, keys=("a", "n", "k", "m"))
        text = head.text if prefix else _cap(head.text)
        for s, e in head.keypoints:
            w.keypoints.append([w.length + s, w.length + e])
        w.add(text)
        w.add(rng.choice(CONNECTORS))
        w.add(_maybe(rng, cfg.filler_rate, MID_FILLER))
        w.add(str(left), keypoint=True)
        w.add(" ")
        w.add(step.op, keypoint=True)
        w.add(" ")
        w.add(str(step.right), keypoint=True)
        w.add(" = ")
        w.add(str(result), keypoint=True)
        w.add(" ")
        w.add(base["item"], keypoint=True)
        w.add(_maybe(rng, cfg.filler_rate, SUFFIX_FILLER))
        w.add(".")
        spans.append([start, w.length])
    w.add(" " + answer_sentence(str(carried)))
    return w.text, w.keypoints, spans


def generate_split(split: str, cfg: SynthConfig, seen: set[str]) -> list[Example]:
    """All problems of one split, deterministic for (cfg.seed, split); questions in `seen` are skipped."""
    size = {"train": cfg.train_size, "dev": cfg.dev_size, "test": cfg.test_size, "test_ood": cfg.ood_size}[split]
    lo, hi = (cfg.ood_min_steps, cfg.ood_max_steps) if split == "test_ood" else (cfg.min_steps, cfg.max_steps)
    rng = random.Random(f"kpod-synth-{cfg.seed}-{split}")
    examples: list[Example] = []
    bar = progress(total=size, desc=f"synth {split}", unit="problem")
    while len(examples) < size:
        num_steps = rng.randint(lo, hi)
        problem = make_problem(rng, num_steps, cfg, inject_error=rng.random() < cfg.error_rate)
        if problem is None or problem["question"] in seen:
            continue
        seen.add(problem["question"])
        examples.append(Example(id=f"{split}-{len(examples):05d}", **problem))
        bar.update(1)
    bar.close()
    return examples


def generate(cfg: SynthConfig) -> dict[str, list[Example]]:
    """Every split of the testbed; no question appears twice across splits."""
    seen: set[str] = set()
    return {split: generate_split(split, cfg, seen) for split in SPLITS}


def write_testbed(out_dir: str | Path, cfg: SynthConfig) -> dict[str, Path]:
    """Write DIR/<split>.jsonl for every split and DIR/synth_config.json."""
    out_dir = Path(out_dir)
    paths = {}
    for split, examples in generate(cfg).items():
        paths[split] = out_dir / f"{split}.jsonl"
        write_jsonl(paths[split], (ex.to_json() for ex in examples))
    write_json(out_dir / "synth_config.json", to_dict(cfg))
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="directory for the split files")
    add_config_arguments(parser, SynthConfig)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(SynthConfig, args)
    paths = write_testbed(args.out, cfg)
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0
