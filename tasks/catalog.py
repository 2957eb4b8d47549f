"""Every task kind: importing this module imports each task module once, and
each registers itself (tasks.registry). The runner and --task read the kinds here."""

from tasks import (classification, image_classification,  # noqa: F401
                   multiple_choice, pretraining, question_answering, registry,
                   sentence_embedding, tagging)
from tasks.distillation import deit, distilbert, tinybert  # noqa: F401
from tasks.tools import features  # noqa: F401 (--task=extract_features)


def names():
    """Sorted names of every task kind."""
    return registry.names()


def task_class(name):
    """The Task class called `name`; an unknown name lists the close matches."""
    return registry.task_class(name)
