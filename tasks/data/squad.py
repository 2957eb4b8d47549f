"""SQuAD v1.1 / v2.0 readers: JSON files, TFDS, and a synthetic stand-in.

Every reader returns a list of examples, one dict per question:

    id, question, context: strings
    answers: list of answer texts ([] when unanswerable)
    answer_starts: character offsets of those answers in `context`
    is_impossible: bool (always False for v1.1)

`synthetic_examples` is the task's embedded default ("" as data): a small
reading task that needs no download (see its docstring).
"""

import json
import re

import numpy as np
import tensorflow as tf

from tasks.data import tfds_reader
from tasks.data.bad_rows import BadExamples, BadRow
from tasks.data.text_files import split_file


def _example(id_, question, context, answers, answer_starts, is_impossible=False):
    return dict(id=str(id_), question=question, context=context, answers=list(answers),
                answer_starts=[int(start) for start in answer_starts],
                is_impossible=bool(is_impossible))


def read_squad_json(path, bad=None):
    """Examples of a SQuAD-format JSON file (data -> paragraphs -> qas).

    A question with a missing field, or an answer that is not where its
    answer_start says (context[answer_start:answer_start + len(text)] !=
    text), goes to `bad` (a bad_rows.BadExamples; default: an error naming
    path:line).
    """
    bad = bad or BadExamples()
    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    examples = []
    for a, article in enumerate(json.loads(text)["data"], start=1):
        for p, paragraph in enumerate(article["paragraphs"], start=1):
            for q, qa in enumerate(paragraph["qas"], start=1):
                try:
                    examples.append(_checked(qa, paragraph.get("context")))
                except BadRow as error:
                    bad.report(_place(path, text, qa.get("id"), (a, p, q)), error.problem,
                               error.fix, what="questions")
    return examples


def _checked(qa, context):
    """A question of a SQuAD file and its paragraph's context -> an example;
    BadRow when a field is missing or an answer is not in the context."""
    answers = qa.get("answers", [])
    missing = [name for name, value in (("id", qa.get("id")), ("question", qa.get("question")),
                                        ("context", context)) if value is None]
    missing += [f"answers/{name}" for name in ("text", "answer_start")
                if any(name not in answer for answer in answers)]
    if missing:
        raise BadRow(f"question {qa.get('id')!r} has no {missing[0]!r} field",
                     "Fix the question")
    for answer in answers:
        answer_text = str(answer["text"])
        try:
            start = int(answer["answer_start"])
        except (TypeError, ValueError):
            raise BadRow(f"question {qa['id']!r}: answer_start {answer['answer_start']!r} is "
                         "not a character offset (an integer)", "Fix the question") from None
        found = context[start:start + len(answer_text)]
        if found != answer_text:
            raise BadRow(f"question {qa['id']!r}: answer {answer_text!r} is not at answer_start "
                         f"{start} of its context (that is {found!r})",
                         "Fix the answer's answer_start or text")
    return _example(qa["id"], qa["question"], context, [answer["text"] for answer in answers],
                    [answer["answer_start"] for answer in answers],
                    qa.get("is_impossible", False))


def _place(path, text, id_, numbers):
    """path:line of question `id_` (the line of its "id" in the JSON text), or
    its article, paragraph and question numbers when it has no id."""
    for spelled in (json.dumps(id_, ensure_ascii=False), json.dumps(id_)):  # raw or escaped
        found = id_ is not None and re.search(r'"id"\s*:\s*' + re.escape(spelled), text)
        if found:
            line = text.count("\n", 0, found.start()) + 1
            return f"{path}:{line}"
    return f"{path}: article {numbers[0]}, paragraph {numbers[1]}, question {numbers[2]}"


def load_tfds(name, split, data_dir=None):
    """Examples of a TFDS SQuAD-like dataset ("squad/v1.1", "squad/v2.0", ...).

    Reads the features `id`, `question`, `context`, `answers/text`,
    `answers/answer_start` and, in v2.0, `is_impossible`.
    """
    return [_example(row["id"], row["question"], row["context"], row["answers"]["text"],
                     row["answers"]["answer_start"], row.get("is_impossible", False))
            for row in tfds_reader.load_tfds(name, split, data_dir)]


def load_squad(data, split, tfds_data_dir=None, bad=None):
    """Examples of `split` from a JSON file, a folder of them, or a TFDS name.

    A file serves every split; a folder holds train*.json and dev*.json (or
    validation*.json), as the official downloads are named; anything else
    is a TFDS name. A file's bad questions go to `bad` (see read_squad_json).
    """
    if tf.io.gfile.exists(data):  # a file serves every split; a folder has one per split
        return read_squad_json(split_file(data, split, extensions=(".json",)), bad)
    return load_tfds(data, split, tfds_data_dir)


# The synthetic task's words: a marker per context, fillers around it.
MARKERS = ("alpha", "beta", "gamma", "delta", "zeta", "theta", "kappa", "sigma")
FILLERS = ("red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "rock", "fish",
           "bird", "star", "rain", "snow", "wind", "fire", "lake", "hill", "road", "ship",
           "gold", "iron", "salt", "milk")
QUESTION_WORDS = ("what", "follows", "precedes", "?", ".")


def synthetic_vocabulary():
    """A WordPiece vocabulary (list of tokens) spelling every synthetic word whole."""
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *QUESTION_WORDS, *MARKERS, *FILLERS]


def synthetic_examples(num_examples, seed=0, unanswerable_fraction=0.0):
    """A small reading task whose answers depend on the question.

    Context: 2-4 sentences of filler words, each ending in "."; one holds a
    marker ("rain moon zeta cat ."), 1-2 words on each side of it. Question:
    "what follows zeta ?" (the words after the marker, up to the period) or
    "what precedes zeta ?" (the words before it, from the sentence start).
    An unanswerable question (v2.0 style) has no marker sentence in its
    context. The answer is found by position, not by its words, and the two
    questions ask for opposite sides: a model that ignores the question
    answers at most half the answerable ones.
    """
    rng = np.random.default_rng(seed)
    pick = lambda low, high: list(rng.choice(FILLERS, size=rng.integers(low, high + 1)))  # noqa: E731
    examples = []
    for index in range(num_examples):
        marker = str(rng.choice(MARKERS))
        num_sentences = int(rng.integers(2, 5))
        marked = int(rng.integers(num_sentences))
        impossible = rng.random() < unanswerable_fraction
        follows = rng.random() < 0.5
        words, answer = [], None
        for sentence in range(num_sentences):
            if sentence != marked or impossible:
                words += pick(2, 5) + ["."]
                continue
            before, after = pick(1, 2), pick(1, 2)
            answer = (len(words), before) if not follows else (len(words) + len(before) + 1,
                                                                after)
            words += before + [marker] + after + ["."]
        context = " ".join(words)
        question = f"what {'follows' if follows else 'precedes'} {marker} ?"
        id_ = f"synthetic-{seed}-{index}"
        if impossible:
            examples.append(_example(id_, question, context, [], [], True))
            continue
        first_word, answer_words = answer
        start = len(" ".join(words[:first_word] + [""]))
        text = " ".join(answer_words)
        assert context[start:start + len(text)] == text
        examples.append(_example(id_, question, context, [text], [start]))
    return examples
