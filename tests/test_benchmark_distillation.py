"""benchmarks.distillation --quick runs and writes its JSON (never checks timings)."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDENTS = ["distilbert_base_uncased", "tinybert_6l_768d", "tinybert_4l_312d"]
LAYERS = {"distilbert_base_uncased": 6, "tinybert_6l_768d": 6, "tinybert_4l_312d": 4}


@pytest.mark.heavy
def test_quick_run_writes_rows(tmp_path):
    output = tmp_path / "results" / "distillation.json"  # folder does not exist yet
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.distillation", "--quick", f"--output={output}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| student |" in completed.stdout

    result = json.loads(output.read_text())
    assert result["teacher"]["preset"] == "bert_base_uncased"
    assert result["teacher"]["layers"] == 12
    assert result["config"]["quick"] is True
    assert result["config"]["batch_size"] == 2 and result["config"]["sequence_length"] == 32
    assert [row["student"] for row in result["rows"]] == STUDENTS
    for row in result["rows"]:
        assert row["layers"] == LAYERS[row["student"]]
        assert row["layer_ratio"] == 12 / row["layers"]
        assert math.isclose(row["target"], row["layer_ratio"] * 0.7)
        assert len(row["speedup_per_round"]) == result["config"]["repeats"] == 5
        for value in [row["speedup"], row["teacher_ms"], row["student_ms"],
                      *row["speedup_per_round"]]:
            assert math.isfinite(value) and value > 0
        assert isinstance(row["passed"], bool)
