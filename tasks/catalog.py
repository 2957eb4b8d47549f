"""Every task module, imported once so each registers its task kinds (tasks.registry)."""

from tasks import (classification, image_classification,  # noqa: F401
                   multiple_choice, pretraining, question_answering, sentence_embedding,
                   tagging)
from tasks.distillation import distilbert, tinybert  # noqa: F401
from tasks.tools import features  # noqa: F401 (--task=extract_features)
