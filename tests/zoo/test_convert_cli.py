"""python -m zoo.convert: the command line a user runs."""

import os
import subprocess
import sys

import numpy as np
import pytest

import zoo
from tests.zoo import hf_fixtures as hf


def run(*args, command=(sys.executable, "-m", "zoo.convert")):
    return subprocess.run([*command, *args], capture_output=True,
                          text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__)))), timeout=300)


def console_script(name):
    """A console script pyproject installs, beside this Python."""
    return os.path.join(os.path.dirname(sys.executable), name)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    case = hf.CASES["bert_pretraining_gelu"]
    model = hf.make_model(case)
    folder = str(tmp_path_factory.mktemp("cli_bert"))
    state = hf.save(case, model, folder)
    return folder, hf.reference_outputs(case, model, state)


def test_hf_to_keras_and_back(checkpoint, tmp_path):
    folder, reference = checkpoint
    keras_file = str(tmp_path / "model.keras")
    result = run(f"--input={folder}", f"--output={keras_file}")
    assert result.returncode == 0, result.stderr
    assert "Loaded 46 variables" in result.stdout  # 39 backbone + MLM and NSP heads
    model = zoo.load(keras_file, with_head=True)
    np.testing.assert_allclose(model(hf.text_batch())["mlm_logits"], reference["mlm_logits"],
                               atol=1e-5)
    hf_folder = str(tmp_path / "hf")  # back, through the console script
    result = run(f"--input={keras_file}", f"--output={hf_folder}",
                 command=[console_script("kerasbert-convert")])
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(hf_folder)) == ["config.json", "model.safetensors"]


def test_backbone_only_reports_the_heads_left_out(checkpoint, tmp_path):
    folder, _ = checkpoint
    result = run(f"--input={folder}", f"--output={tmp_path / 'backbone.keras'}",
                 "--nowith_head")
    assert result.returncode == 0, result.stderr
    assert "Loaded 39 variables" in result.stdout and "Left out 7" in result.stdout
    assert "cls.seq_relationship.weight: a head" in result.stdout


def test_bad_input_is_a_usage_error(tmp_path):
    result = run(f"--input={tmp_path}", f"--output={tmp_path / 'x.keras'}")
    assert result.returncode != 0
    assert "Cannot tell the checkpoint format" in result.stderr
