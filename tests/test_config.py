from dataclasses import dataclass, field

import pytest

from kpod.config import from_dict, load_config, parse_overrides, to_dict
from kpod.errors import ConfigError


@dataclass
class Train:
    lr: float = 5e-5
    epochs: int = 10
    bf16: bool = False
    targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    schedule: str | None = None


@dataclass
class Run:
    seed: int = 0
    train: Train = field(default_factory=lambda: Train(epochs=20))


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\ntrain:\n  lr: 1e-4\n  epochs: 4\n")
    cfg = load_config(Run, path, ["--train.epochs", "6", "--train.bf16", "train.targets=[a,b]"])
    assert cfg == Run(seed=3, train=Train(lr=1e-4, epochs=6, bf16=True, targets=["a", "b"]))
    assert to_dict(cfg)["train"]["lr"] == 1e-4


def test_a_section_keeps_its_parents_defaults():
    assert load_config(Run, None, ["--train.lr", "1e-3"]).train == Train(lr=1e-3, epochs=20)


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(ConfigError, match=r"unknown config key 'train.epoch'; did you mean 'train.epochs'"):
        load_config(Run, None, ["--train.epoch", "3"])


def test_bad_value_names_the_key():
    with pytest.raises(ConfigError, match=r"train.epochs: expected int"):
        from_dict(Run, {"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(Run, {"seed": 1.5})


def test_none_and_dash_keys():
    assert parse_overrides(["--train.schedule", "null", "--seed=2"]) == {"train": {"schedule": None}, "seed": 2}
    assert load_config(Run, None, ["--train.schedule", "none"]).train.schedule is None
    assert load_config(Run, None, ["--train.schedule", "kpod"]).train.schedule == "kpod"


def test_cli_separates_overrides_from_a_commands_own_options():
    from kpod.cli import split_overrides

    own, overrides = split_overrides(["cfg.yaml", "--out", "d", "--name", "x", "--train.lr=1e-4", "--train.bf16"],
                                     {"--out", "-h", "--help"})
    assert own == ["cfg.yaml", "--out", "d"]
    assert overrides == ["--name", "x", "--train.lr=1e-4", "--train.bf16"]
