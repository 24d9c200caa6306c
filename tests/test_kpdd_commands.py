"""`kpod kpdd ...` and `kpod sandbox run` from the command line."""

from __future__ import annotations

import json

from kpod.cli import main
from kpod.data.synth import SynthConfig, write_testbed


def test_kpdd_data_command_writes_records_and_counts(tmp_path, capsys):
    write_testbed(tmp_path / "tb", SynthConfig(train_size=12, dev_size=0, test_size=2, ood_size=2, error_rate=0.3))
    code = main(["kpdd", "data", "--data", str(tmp_path / "tb"), "--out", str(tmp_path / "run"), "--mode", "pot",
                 "--limit", "5", "--sandbox-workers", "1"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)["data"]
    assert stats["source"] == "testbed" and stats["questions"] == 5 and set(stats["modes"]) == {"pot"}
    lines = (tmp_path / "run" / "kpdd_data.jsonl").read_text().splitlines()
    assert len(lines) == stats["modes"]["pot"]["kept"] == 5
    assert json.loads((tmp_path / "run" / "kpdd_data_stats.json").read_text()) == stats


def test_kpdd_command_errors_are_reported(tmp_path, capsys):
    assert main(["kpdd", "data", "--out", str(tmp_path)]) == 2
    assert "--data is required" in capsys.readouterr().err
    assert main(["kpdd", "train", "--out", str(tmp_path), "--student", "x"]) == 2
    assert "kpdd_data.jsonl" in capsys.readouterr().err
    assert main(["kpdd", "data", "--data", "x", "--mode", "sql"]) == 2
    assert "mode" in capsys.readouterr().err


def test_sandbox_run_missing_file_is_an_error(tmp_path, capsys):
    assert main(["sandbox", "run", str(tmp_path / "none.py")]) == 2
    assert "cannot read program" in capsys.readouterr().err
