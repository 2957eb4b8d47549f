"""The README and every docs page run as written, and say what the code says.

Each page's ```python blocks run in order, in one namespace, in a fresh
temporary folder; a `print(...)  # text` line must print that text. A block
that cannot run here is preceded by `<!-- not run: REASON -->`. ```bash
blocks are not run: the modules they name must exist, and the flags of
`python -m tasks.run` command lines must be real.
"""

import contextlib
import functools
import importlib.util
import io
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

import zoo
from zoo.__main__ import preset_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))
PAGE_IDS = [str(page.relative_to(ROOT)) for page in PAGES]

FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not run:(.*?)-->\s*$")
PRINT_COMMENT = re.compile(r"^print\(.*\)\s+# (.*)$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
ISSUE_NUMBER = re.compile(r"issue ?#?[0-9]", re.I)
# Commands that moved; the pages may name their old form only to say so.
MOVED_MODULES = {"tasks.search": "tasks.tools.search", "tasks.visualize": "tasks.tools.visualize"}


def blocks(page):
    """[(language, first line number, code, not-run reason or None)] of a page."""
    lines = page.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        reason = NOT_RUN.match(previous.strip())
        found.append((opening.group(1), index + 2, "\n".join(lines[index + 1:end]) + "\n",
                      reason.group(1).strip() if reason else None))
        index = end + 1
    return found


def not_run_comments(page):
    return [(number, match.group(1).strip())
            for number, line in enumerate(page.read_text().splitlines(), 1)
            if (match := NOT_RUN.match(line.strip()))]


def expected_output(code, where):
    """The comments of the block's print lines: what each prints."""
    expected = []
    for line in code.splitlines():
        if line.startswith("print("):
            match = PRINT_COMMENT.match(line)
            assert match, f"{where}: `{line}` needs a `# what it prints` comment"
            expected.append(match.group(1).strip())
    return expected


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_examples_run_and_print_what_they_say(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no downloads: hub handles read their caches only
    monkeypatch.setenv("KERASBERT_OFFLINE", "1")
    name = str(page.relative_to(ROOT))
    for number, reason in not_run_comments(page):
        assert reason, f"{name}:{number}: `<!-- not run: REASON -->` needs its reason"
    namespace = {"__name__": "__docs__"}
    for language, first_line, code, reason in blocks(page):
        if language != "python" or reason:
            continue
        where = f"{name}:{first_line}"
        expected = expected_output(code, where)
        printed = io.StringIO()
        # Padded so that a traceback gives the line number in the page.
        program = compile("\n" * (first_line - 1) + code, name, "exec")
        with contextlib.redirect_stdout(printed):
            exec(program, namespace)
        assert printed.getvalue().splitlines() == expected, f"{where} printed otherwise"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_not_run_marks_a_python_block(page):
    lines = page.read_text().splitlines()
    for number, _ in not_run_comments(page):
        following = next((line for line in lines[number:] if line.strip()), "")
        assert following.strip() == "```python", (
            f"{page.name}:{number}: a not-run comment stands right before a ```python block")


def test_preset_table_matches_registry():
    models = (ROOT / "docs" / "models.md").read_text()
    assert preset_table() in models
    assert all(f"| {name} |" in models for name in zoo.available())


def test_task_options_table_is_the_declarations():
    """docs/tasks.md lists every task option as the Options dataclasses declare it
    (regenerate with `python -c "from tasks.training import runner;
    print(runner.options_markdown())"`)."""
    from tasks.training import runner

    assert runner.options_markdown() in (ROOT / "docs" / "tasks.md").read_text()


def test_settings_a_resume_may_change_are_the_declarations():
    """docs/tasks.md's "Resume checks" names exactly the run settings declared
    may_change=True."""
    import re

    from tasks import options
    from tasks.training import runner

    page = (ROOT / "docs" / "tasks.md").read_text()
    paragraph = page[page.index("**Resume checks.**"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    listed = set(re.findall(r"`(\w+)`", paragraph.split("trained, which are")[1]))
    assert listed - {"resumes"} == options.may_change(runner.RunSettings)


def test_readme_starts_with_the_two_commands():
    # .ci/run runs the first two lines of the README's first ```bash block.
    first = blocks(README)[0]
    assert first[0] == "bash"
    commands = first[2].strip().splitlines()
    assert commands[0].startswith("pip install -e . && python -m tasks.run")
    assert commands[1].startswith('pip install -e ".[test]"') and "pytest" in commands[1]


def test_readme_is_short_and_leads_to_every_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for language, first_line, code, _ in blocks(README):
        if language == "python":
            assert len(code.strip().splitlines()) <= 15, f"README.md:{first_line}: keep it short"
    linked = {target.split("#")[0] for target in LINK.findall(text)}
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in linked, f"the README links to no docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_no_pointers_outside_the_repo(page):
    text = page.read_text()
    assert "../shared" not in text
    assert not ISSUE_NUMBER.search(text), ISSUE_NUMBER.search(text)
    for target in LINK.findall(text):
        assert not re.match(r"[a-z]+://", target), f"{page.name}: external link {target}"


def test_benchmarks_name_no_issue_numbers():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        match = ISSUE_NUMBER.search(path.read_text())
        assert not match, f"{path.name}: {match.group(0)!r}"


def slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page):
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines()
            if re.match(r"#+ ", line)}


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_relative_links_point_to_files_in_the_repo(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target} does not exist"
        assert file.is_relative_to(ROOT), f"{page.name}: {target} is outside the repository"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{page.name}: {target}: no such heading"


def commands(page):
    """Every command line of the page's bash blocks, continuations joined,
    comments cut."""
    lines = []
    for language, _, code, _ in blocks(page):
        if language != "bash":
            continue
        for line in code.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_named_modules_and_console_scripts_exist(page):
    text = page.read_text()
    for module in set(re.findall(r"python3? -m ([\w.]+)", text)):
        if module in MOVED_MODULES:  # only where the README and tasks.md say what replaced it
            assert page.name in ("README.md", "tasks.md"), \
                f"{page.name}: {module} is now {MOVED_MODULES[module]}"
            continue
        assert importlib.util.find_spec(module), f"{page.name}: no module {module}"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for script in set(re.findall(r"\bkerasbert-[a-z]+\b", text)):
        assert script in scripts, f"{page.name}: no console script {script}"


@functools.cache
def run_flags():
    """The flags `python -m tasks.run` accepts, from its --helpfull."""
    # absl prints the help and exits with status 1.
    helpfull = subprocess.run([sys.executable, "-m", "tasks.run", "--helpfull"], cwd=ROOT,
                              capture_output=True, text=True).stdout
    flags = set()
    for negatable, name in re.findall(r"^\s+--(\[no\])?(\w+):", helpfull, re.M):
        flags.add(name)
        if negatable:
            flags.add("no" + name)
    assert {"task", "model", "data"} <= flags, helpfull[-2000:]
    return flags


def test_tasks_run_flags_in_the_docs_are_real():
    used = {}
    for page in PAGES:
        for line in commands(page):
            for command in re.split(r"&&|;|\|", line):
                if re.search(r"python -m tasks\.run\b|\bkerasbert-train\b", command):
                    for flag in re.findall(r"\s--(\w+)", command):
                        used.setdefault(flag, page.name)
    for page in (ROOT / "docs" / "tasks.md", ROOT / "docs" / "distillation.md"):
        for line in page.read_text().splitlines():
            if line.startswith("| `--"):  # a row of a flag table: the flags in its first cell
                for flag in re.findall(r"--(\w+)", re.split(r"(?<!\\)\|", line)[1]):
                    used.setdefault(flag, page.name)
    unknown = {flag: page for flag, page in used.items() if flag not in run_flags()}
    assert not unknown, f"flags python -m tasks.run does not have: {unknown}"


def test_pretrained_page_starts_with_a_hub_handle_and_names_real_weights():
    code = next(code for language, _, code, _ in blocks(ROOT / "docs" / "pretrained.md")
                if language == "python")
    loads = re.findall(r'zoo\.load\("([^"]+)"\)', code)
    assert loads[0].startswith("hf://")
    for name in loads:  # every name is a handle or a preset with published weights
        assert zoo.hub.is_handle(name) or zoo.get_preset(name).weights is not None
