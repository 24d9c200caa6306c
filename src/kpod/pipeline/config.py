"""The configuration of `kpod run`: one typed section per stage, read from YAML, overridable with
`--section.key value`. The defaults are the embedded testbed that `kpod demo` runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from kpod.config import field_help
from kpod.curriculum.config import ScheduleConfig
from kpod.data.synth import SynthConfig
from kpod.distill.config import TrainConfig
from kpod.models.pretrain import BaseModelConfig
from kpod.teacher.config import TeachConfig
from kpod.weighting.config import WeighConfig

TESTBED = "testbed"


@dataclass
class DataSection:
    dataset: str = field_help(
        "'testbed' (synthesized), a built-in data set (gsm8k, svamp, asdiv, csqa, multiarith), a generic "
        "JSONL file, or a directory of <split>.jsonl files", TESTBED)
    data_dir: str | None = field_help("directory of the raw benchmark files (default: the Hugging Face hub)", None)
    rationales: list[str] = field_help(
        "teacher rationale files (paths, or names inside DATA_DIR/rationales/) to attach to the train split; "
        "empty: the data set's own rationales, else every DATA_DIR/rationales/<dataset>_*.json; "
        "[teach]: generate them with the teacher of the `teach` section", [])
    correct_only: bool = field_help("keep only teacher rationales whose answer is correct", True)
    train_limit: int | None = field_help("train on the first N questions only", None)
    eval_sets: list[str] = field_help(
        "what to evaluate on: split names of the data set, or DATASET:SPLIT for another one (OOD)",
        ["test", "test_ood"])
    eval_limit: int | None = field_help("evaluate on the first N questions of each set", None)
    dev_limit: int | None = field_help("questions of the dev split evaluated during training", 100)
    synth: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class EvalSection:
    max_new_tokens: int = field_help("generation budget per question", 200)
    batch_size: int = field_help("questions generated together (the testbed's 300-question sets in 2 batches)", 150)


@dataclass
class RunConfig:
    name: str = field_help("run name shown in the report", "testbed")
    methods: list[str] = field_help("methods to train side by side (see `kpod run --list-methods`)", ["cotd", "kpod"])
    seeds: list[int] = field_help("student training seeds; every method runs once per seed", [0])
    student: str = field_help("student: hub name or local directory; 'base' builds the testbed base model", "base")
    launcher: str = field_help(
        "command that launches the train stage in its own processes, e.g. 'accelerate launch --num_processes 4' "
        "(DDP, FSDP or DeepSpeed as accelerate is configured); empty: train in this process", "")
    data: DataSection = field(default_factory=DataSection)
    base_model: BaseModelConfig = field(default_factory=lambda: BaseModelConfig(skip_seq2seq=True))
    teach: TeachConfig | None = field_help("the teacher, when data.rationales is [teach]", None)
    teach_samples: int = field_help("correct teacher rationales kept per question when generating them", 1)
    weigh: WeighConfig = field(default_factory=lambda: WeighConfig(predictor="cotd", init_keep=0.9, prefixes=0, lr=2e-3,
                                                                   epochs=10.0))
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # dev in one batch after epochs 3 and 6 (an epoch is 224 steps): the demo's dev curve at little cost
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=2e-3, epochs=6, batch_size=8, warmup_ratio=0.05,
                                                                   eval_every=672, eval_batch_size=100))
    eval: EvalSection = field(default_factory=EvalSection)
