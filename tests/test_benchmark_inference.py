"""`python -m benchmarks.inference --quick` runs and writes its JSON (no timing asserted)."""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.heavy
def test_quick_run_measures_all_three_libraries(tmp_path):
    output = tmp_path / "inference.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.inference", "--quick",
                           f"--output={output}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert sorted(result["sides"]) == ["hugging-face", "keras-hub", "kerasbert"]
    assert sorted(result["ratios"]) == ["kerasbert / hugging-face", "kerasbert / keras-hub"]
    # The same shape everywhere: the parameter counts agree.
    counts = {side["parameters"] for side in result["sides"].values()}
    assert len(counts) == 1, result["sides"]
    for side in result["sides"].values():
        assert len(side["all_seconds"]) == 5
        assert math.isfinite(side["sequences_per_second"]) and side["sequences_per_second"] > 0
    assert result["peak_flops"] > 0


def test_flop_formula():
    from benchmarks.peers import BERT_BASE

    # 2*L*(4h^2 + 2h*i)*tokens + 4*L*s^2*h*batch for BERT-base, batch 8 x 128.
    assert BERT_BASE.flops() == 2 * 12 * (4 * 768 ** 2 + 2 * 768 * 3072) * 1024 + \
        4 * 12 * 128 ** 2 * 768 * 8
