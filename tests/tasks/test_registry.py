"""One task table: every kind registers itself; --task (checked with --helpfull in
test_tfds_and_flags) and the runner read it, and the task modules import no
command-line module back (no cycle)."""

import ast
import pathlib

import pytest

from tasks import catalog

TASKS = pathlib.Path(__file__).parents[2] / "tasks"


def test_every_task_kind_is_registered_once_and_named_by_its_class():
    names = catalog.names()
    assert {"classification", "question_answering", "distill_tinybert_task",
            "sentence_embedding", "image_classification"} <= set(names)
    assert all(catalog.task_class(name).name == name for name in names)
    with pytest.raises(ValueError, match=r"Unknown task 'clasification'\. Did you mean "
                       "classification"):
        catalog.task_class("clasification")


def test_no_task_module_imports_the_runner_or_the_command_line():
    """tasks.training.runner and tasks.run sit on top of the task modules; nothing below
    imports them, not even inside a function."""
    users = []
    for path in TASKS.rglob("*.py"):
        if path.name in ("runner.py", "run.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            if {"tasks.training.runner", "tasks.run"} & set(imported):
                users.append(str(path.relative_to(TASKS.parent)))
    assert users == []
