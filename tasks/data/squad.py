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
import os

import numpy as np
import tensorflow as tf


def _example(id_, question, context, answers, answer_starts, is_impossible=False):
    return dict(id=str(id_), question=question, context=context, answers=list(answers),
                answer_starts=[int(start) for start in answer_starts],
                is_impossible=bool(is_impossible))


def read_squad_json(path):
    """Examples of a SQuAD-format JSON file (data -> paragraphs -> qas)."""
    with tf.io.gfile.GFile(path) as f:
        articles = json.load(f)["data"]
    examples = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = qa.get("answers", [])
                examples.append(_example(
                    qa["id"], qa["question"], context,
                    [answer["text"] for answer in answers],
                    [answer["answer_start"] for answer in answers],
                    qa.get("is_impossible", False)))
    return examples


def _split_file(folder, split):
    """The JSON file of `split` in a folder: train*.json, dev*.json or validation*.json."""
    prefixes = ("dev", "validation") if split in ("dev", "validation") else (split,)
    names = sorted(name for name in tf.io.gfile.listdir(folder)
                   if name.endswith(".json") and name.startswith(prefixes))
    if len(names) != 1:
        raise ValueError(f"Expected one {'/'.join(prefixes)}*.json file for split "
                         f"{split!r} in {folder}, found {names}.")
    return os.path.join(folder, names[0])


def load_tfds(name, split, data_dir=None):
    """Examples of a TFDS SQuAD-like dataset ("squad/v1.1", "squad/v2.0", ...).

    Reads the features `id`, `question`, `context`, `answers/text`,
    `answers/answer_start` and, in v2.0, `is_impossible`.
    """
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, data_dir=data_dir)
    examples = []
    for row in tfds.as_numpy(dataset):
        text = lambda value: value.decode("utf-8")  # noqa: E731
        examples.append(_example(
            text(row["id"]), text(row["question"]), text(row["context"]),
            [text(answer) for answer in row["answers"]["text"]],
            row["answers"]["answer_start"], row.get("is_impossible", False)))
    return examples


def load_squad(data, split, tfds_data_dir=None):
    """Examples of `split` from a JSON file, a folder of them, or a TFDS name.

    A file serves every split; a folder holds train*.json and dev*.json (or
    validation*.json), as the official downloads are named; anything else
    is a TFDS name.
    """
    if tf.io.gfile.isdir(data):
        return read_squad_json(_split_file(data, split))
    if tf.io.gfile.exists(data):
        return read_squad_json(data)
    return load_tfds(data, split, tfds_data_dir)


# The synthetic task's words: markers name the clauses, fillers fill them.
MARKERS = ("alpha", "beta", "gamma", "delta", "zeta", "theta", "kappa", "sigma")
FILLERS = ("red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "rock", "fish",
           "bird", "star", "rain", "snow", "wind", "fire", "lake", "hill", "road", "ship",
           "gold", "iron", "salt", "milk")
QUESTION_WORDS = ("what", "follows", "?", ".")


def synthetic_vocabulary():
    """A WordPiece vocabulary (list of tokens) spelling every synthetic word whole."""
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *QUESTION_WORDS, *MARKERS, *FILLERS]


def synthetic_examples(num_examples, seed=0, unanswerable_fraction=0.0, num_clauses=4):
    """A reading task a model can only solve by matching question and context.

    Context: `num_clauses` clauses "[noise] MARKER a [b [c]] .", each with a
    different marker, noise of 0-2 filler words before it. Question: "what
    follows MARKER ?"; the answer is the 1-3 words after that marker, up to
    the period. An unanswerable question (v2.0 style) names a marker that is
    not in the context. A model that ignores the question answers at best
    one clause in `num_clauses` (25% exact match for 4 clauses).
    """
    rng = np.random.default_rng(seed)
    examples = []
    for index in range(num_examples):
        markers = rng.choice(MARKERS, size=num_clauses + 1, replace=False)
        words, answers = [], {}
        for marker in markers[:num_clauses]:
            words += list(rng.choice(FILLERS, size=rng.integers(0, 3)))
            words.append(marker)
            answers[marker] = (len(words), list(rng.choice(FILLERS, size=rng.integers(1, 4))))
            words += answers[marker][1] + ["."]
        context = " ".join(words)
        impossible = rng.random() < unanswerable_fraction
        asked = markers[num_clauses] if impossible else rng.choice(markers[:num_clauses])
        question = f"what follows {asked} ?"
        if impossible:
            examples.append(_example(f"synthetic-{seed}-{index}", question, context, [], [],
                                     True))
            continue
        first_word, answer_words = answers[asked]
        start = len(" ".join(words[:first_word])) + 1
        answer = " ".join(answer_words)
        assert context[start:start + len(answer)] == answer
        examples.append(_example(f"synthetic-{seed}-{index}", question, context, [answer],
                                 [start]))
    return examples
