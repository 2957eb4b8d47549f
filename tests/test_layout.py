"""The import graph, read from the source (imports inside functions count):
kerasbert <- zoo <- export <- tasks, each package importing only from those
before it, and no cycle among the modules of tasks/."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).parents[1]
PACKAGES = ("kerasbert", "zoo", "export", "tasks")  # each may import the ones before it


def _modules():
    """{module name: path} of every module of the four packages."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _imports(path, modules):
    """The project modules `path` imports (`from a import b` is module a.b when
    there is one, else a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                     else node.module for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph():
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def test_each_package_imports_only_the_packages_before_it():
    wrong = []
    for module, imported in _graph().items():
        allowed = PACKAGES[:PACKAGES.index(module.split(".")[0]) + 1]
        wrong += [f"{module} -> {name}" for name in sorted(imported)
                  if name.split(".")[0] not in allowed]
    assert wrong == []


def test_no_import_cycle_among_the_modules_of_tasks():
    graph = {module: {name for name in imported if name.startswith("tasks.")} - {module}
             for module, imported in _graph().items() if module.startswith("tasks.")}
    # Importing a.b.c imports the packages a.b and a first; their __init__
    # files hold docstrings only, so they add no edges (checked here).
    for package in (module for module in graph if (ROOT / module.replace(".", "/")).is_dir()):
        assert graph[package] == set(), f"{package}/__init__.py imports {graph[package]}"
    cycles, done = [], set()

    def visit(module, path):
        if module in path:
            cycles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        for name in sorted(graph.get(module, ())):
            visit(name, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == [], " | ".join(" -> ".join(cycle) for cycle in cycles)
