"""Every example config under configs/ loads, and the testbed config is the embedded default."""

from pathlib import Path

import pytest

from kpod.config import load_config
from kpod.pipeline.config import RunConfig
from kpod.pipeline.methods import get_method

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_says_how_to_run_it(path):
    cfg = load_config(RunConfig, path)
    for method in cfg.methods:
        get_method(method)
    assert f"kpod run configs/{path.name}" in path.read_text()


def test_testbed_config_is_the_default():
    assert load_config(RunConfig, CONFIGS[0].parent / "testbed.yaml") == RunConfig()
