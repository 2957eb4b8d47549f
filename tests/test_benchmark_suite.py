"""`python -m benchmarks` runs its suites and writes the summary (no timing asserted)."""

import json
import math
import os
import subprocess
import sys

import pytest

from benchmarks import __main__ as suite
from benchmarks import first_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_suite(name, folder):
    done = subprocess.run([sys.executable, "-m", "benchmarks", f"--suite={name}", "--quick",
                           f"--output_dir={folder}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((folder / "summary.json").read_text()), done.stdout


@pytest.mark.heavy
def test_training_suite_measures_fit_in_three_libraries_and_bf16_against_fp32(tmp_path):
    summary, stdout = run_suite("training", tmp_path)
    rows = {row["figure"]: row for row in summary["rows"]}
    gain = rows["BERT-base bf16 training step, kerasbert bf16 / kerasbert fp32"]
    assert gain["target"] == ">= 1.4" and gain["mark"] in ("pass", "short")
    assert math.isfinite(gain["value"]) and gain["value"] > 0
    result = json.loads((tmp_path / "training_bert_base_bfloat16.json").read_text())
    assert sorted(result["sides"]) == ["hugging-face", "keras-hub", "kerasbert",
                                       "kerasbert float32"]
    # The same model on every side: head included, the parameter counts agree.
    assert len({side["parameters"] for side in result["sides"].values()}) == 1
    assert "| figure | value | target |" in stdout
    assert (tmp_path / "summary.md").read_text().count("\n") >= 6


@pytest.mark.heavy
def test_export_and_tokenization_suites_run(tmp_path):
    summary, _ = run_suite("export", tmp_path)
    (row,) = summary["rows"]
    assert row["target"] == ">= 0.9" and row["value"] > 0
    export = json.loads((tmp_path / "export_bert_tiny.json").read_text())
    # Both signatures classify the batch alike: the ratio compares equal work.
    assert export["same_probabilities"]


@pytest.mark.heavy
def test_first_step_process_reports_its_phases():
    for library in first_step.LIBRARIES:
        seconds, phases = first_step.launch(library, "test_tiny")
        assert set(phases) == {"import", "build", "first_step"}
        assert seconds > sum(phases.values()) > 0


def test_every_row_reads_a_job_of_the_suite():
    names = {job.name for job in suite.JOBS}
    assert {row.job for row in suite.ROWS} <= names
    targets = [row for row in suite.ROWS if row.target is not None]
    # The first table: nine figures, BERT-base fp32 has two; serving: six.
    assert len(targets) == 16
    ceiling = next(row for row in targets if row.at_most)
    assert ceiling.mark(0.4) == "pass" and ceiling.mark(0.6) == "short"
    assert targets[0].mark(1.3) == "pass" and targets[0].mark(1.2) == "short"
