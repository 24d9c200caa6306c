"""benchmarks/kpdd.py --merge: seeds run in separate processes combine into one report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kpdd.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_kpdd", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_run(seed: int, cot: float, pot: float) -> dict:
    errors = {"understanding": 1, "program_failure": 2, "calculation": 0, "other": 0}
    return {"seed": seed,
            "kpdd-cot": {"test": {"accuracy": cot, "errors": errors}},
            "kpdd-pot": {"test": {"accuracy": pot, "errors": errors}}}


def write_result(path: Path, seeds: list[int], runs: list[dict], epochs: int = 6) -> Path:
    settings = {"seeds": seeds, "methods": ["kpdd-cot", "kpdd-pot"], "epochs": epochs, "out": str(path)}
    path.write_text(json.dumps({"command": f"python benchmarks/kpdd.py --seeds {seeds}", "settings": settings,
                                "runs": runs, "setup": {}, "wall_seconds": 10.0}))
    return path


def test_merge_combines_seeds_in_seed_order(bench, tmp_path):
    late = write_result(tmp_path / "s2.json", [2], [seed_run(2, 0.4, 0.1)])
    early = write_result(tmp_path / "s01.json", [0, 1], [seed_run(0, 0.2, 0.3), seed_run(1, 0.3, 0.2)])
    report = bench.merge_reports([late, early], tmp_path / "all.json")
    assert report["seeds_finished"] == [0, 1, 2]
    assert report["settings"]["seeds"] == [0, 1, 2]
    assert report["accuracy"]["kpdd-cot"]["test"] == {"mean": 0.3, "std": 0.1, "values": [0.2, 0.3, 0.4]}
    assert report["errors"]["kpdd-pot"]["test"]["program_failure"] == 6
    assert report["wall_seconds"] == 20.0
    assert json.loads((tmp_path / "all.json").read_text())["merged_from"] == [str(late), str(early)]


def test_merge_refuses_other_settings_and_repeated_seeds(bench, tmp_path):
    a = write_result(tmp_path / "a.json", [0], [seed_run(0, 0.2, 0.3)])
    other = write_result(tmp_path / "b.json", [1], [seed_run(1, 0.2, 0.3)], epochs=10)
    with pytest.raises(SystemExit, match="settings differ"):
        bench.merge_reports([a, other], tmp_path / "all.json")
    again = write_result(tmp_path / "c.json", [0], [seed_run(0, 0.5, 0.5)])
    with pytest.raises(SystemExit, match="seed repeated"):
        bench.merge_reports([a, again], tmp_path / "all.json")
    assert not (tmp_path / "all.json").exists()
