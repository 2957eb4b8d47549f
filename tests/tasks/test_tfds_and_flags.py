"""TFDS names through the runner (mock data, no download) and the absl command line."""

import os
import subprocess
import sys

import pytest

from tasks.training import runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
tfds = pytest.importorskip("tensorflow_datasets")


def test_glue_sst2_by_name(tmp_path):
    with tfds.testing.mock_data(num_examples=64):
        settings = runner.RunSettings(
            task="classification", data="glue/sst2", text_fields=("sentence",),
            model="bert_test_tiny", model_dir=str(tmp_path / "run"), sequence_length=16,
            train_steps=4, steps_per_loop=4, batch_size=8, vocab_size=100)
        result = runner.run(settings)
    assert result["step"] == 4 and "accuracy" in result["final"]


def test_mnist_by_name(tmp_path):
    with tfds.testing.mock_data(num_examples=64):
        settings = runner.RunSettings(
            task="image_classification", data="mnist", eval_split="test", model="vit_test_tiny",
            model_dir=str(tmp_path / "run"), train_steps=4, steps_per_loop=4, batch_size=8)
        result = runner.run(settings)
    assert result["step"] == 4 and "top1_accuracy" in result["final"]


def test_helpfull_documents_every_flag_and_flagfile_works(tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "tasks.run", "--helpfull"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120).stdout
    for flag in ("--task", "--model", "--init_checkpoint", "--data", "--text_fields",
                 "--sequence_length", "--truncation", "--[no]bucket", "--learning_rate",
                 "--layer_decay", "--mixed_precision", "--[no]jit_compile", "--strategy",
                 "--model_dir", "--export_dir", "--steps_per_loop", "--push_to_hub"):
        assert flag in help_text, flag
    from tasks import catalog

    unwrapped = "".join(line.strip() for line in help_text.splitlines())  # absl wraps lines
    assert "<" + "|".join(catalog.names()) + ">" in unwrapped  # --task reads the registry
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(f"--task=image_classification\n--model=vit_test_tiny\n--train_steps=2\n"
                        f"--steps_per_loop=2\n--batch_size=8\n--model_dir={tmp_path / 'run'}\n")
    done = subprocess.run([sys.executable, "-m", "tasks.run", f"--flagfile={flagfile}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"step": 2' in done.stdout
