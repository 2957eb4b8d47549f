"""The task registry: every task kind registers itself with `@register`.

`tasks.catalog` imports each task module once (as `zoo` imports its family
modules), so the runner, the --task flag and TinyBERT's inner task all read
this one table; nothing else lists the task names.
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


def _load():
    import tasks.catalog  # noqa: F401 (importing the task modules registers them)


def names():
    """Sorted names of every task kind."""
    _load()
    return sorted(_TASKS)


def task_class(name):
    """The Task class called `name`; an unknown name lists the close matches."""
    _load()
    if name not in _TASKS:
        close = difflib.get_close_matches(str(name), _TASKS, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown task {name!r}.{hint} Tasks: {', '.join(sorted(_TASKS))}.")
    return _TASKS[name]
