"""The task registry: every task kind registers itself with `@register`.

This module only holds the table, so every task module can import it;
`tasks.catalog` imports the task modules (as `zoo` imports its family
modules) and is where the runner and the --task flag read the full list.
Nothing else lists the task names.
"""

import difflib

_TASKS = {}


def register(task_class):
    """Adds `task_class` under its `name` (a class decorator)."""
    name = task_class.name
    if _TASKS.get(name, task_class) is not task_class:
        raise ValueError(f"Task {name!r} is registered twice: by {_TASKS[name].__module__} "
                         f"and {task_class.__module__}.")
    _TASKS[name] = task_class
    return task_class


def names():
    """Sorted names of the task kinds registered so far (all of them once
    tasks.catalog is imported)."""
    return sorted(_TASKS)


def task_class(name):
    """The registered Task class called `name`; an unknown name lists the close matches."""
    if name not in _TASKS:
        close = difflib.get_close_matches(str(name), _TASKS, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown task {name!r}.{hint} Tasks: {', '.join(sorted(_TASKS))}.")
    return _TASKS[name]
