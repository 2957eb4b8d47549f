"""Token-tagging data (CoNLL style) as examples {"tokens": [...], "tags": [...]}.

Three sources, one shape of example:
  - a CoNLL file: one token per line, whitespace-separated columns, the tag
    in the last column (CoNLL-2003: word POS chunk NER), a blank line
    between sentences, `-DOCSTART-` lines skipped;
  - a folder of such files, one per split (`train.txt`, `valid.txt`, ...);
  - a TFDS name ("conll2003": features `tokens` and `ner`, a sequence of
    ClassLabel), tags turned back into their names. Needs a network the
    first time;
  - nothing (""): a seeded synthetic set (`synthetic`), so a run needs no
    download.
"""

import collections
import re

import numpy as np
import tensorflow as tf

from tasks.data import tfds_reader
from tasks.data.bad_rows import BadExamples, Row
from tasks.data.text_files import split_file

# TFDS split names that differ from the runner's ("validation").
TFDS_SPLITS = {"conll2003": {"validation": "dev"}}
# TFDS feature names of the tags, first match wins (TFDS, Hugging Face).
TFDS_TAG_FEATURES = ("ner", "ner_tags", "tags")
DOCSTART = "-DOCSTART-"


def parse_conll(lines, source="<lines>", bad=None):
    """CoNLL lines -> [{"tokens": [...], "tags": [...]}], one per sentence, each a
    bad_rows.Row whose `where` is its first line ("source:line").

    Every token line has the file's column count (its lines' most common
    one, at least 2: the token first, the tag last). A line that differs
    makes its sentence bad: `bad` (a bad_rows.BadExamples; default: an
    error naming source:line) raises, or skips the sentence.
    """
    bad = bad or BadExamples()
    counts = collections.Counter(len(columns) for columns in map(str.split, lines)
                                 if columns and columns[0] != DOCSTART)
    expected = max(counts.most_common(1)[0][0] if counts else 2, 2)
    examples, tokens, tags = [], [], []
    first, broken = None, False

    def end_sentence():
        nonlocal first, broken
        if tokens and not broken:
            examples.append(Row({"tokens": list(tokens), "tags": list(tags)},
                                f"{source}:{first}"))
        tokens.clear()
        tags.clear()
        first, broken = None, False

    for number, line in enumerate(lines, start=1):
        columns = line.split()
        if not columns or columns[0] == DOCSTART:
            end_sentence()
            continue
        first = first or number
        if len(columns) != expected:
            if not broken:  # one report per sentence: the sentence is what is skipped
                broken = True
                bad.report(f"{source}:{number}",
                           f"{len(columns)} column{'s' * (len(columns) != 1)} where the "
                           f"file's other lines have {expected} (the token first, its tag "
                           f"last): {line.strip()[:80]!r}",
                           fix="Fix the line", what="sentences")
            continue
        tokens.append(columns[0])
        tags.append(columns[-1])
    end_sentence()
    return examples


def read_conll(path, bad=None):
    """A CoNLL file -> examples (see `parse_conll`)."""
    with tf.io.gfile.GFile(path, "r") as f:
        # Line ends only (str.splitlines also splits on \x85, \u2028, ...): the
        # numbers in messages are the file's own line numbers.
        lines = re.split("\r\n|\r|\n", f.read())
    return parse_conll(lines, source=str(path), bad=bad)


def load_tfds(name, split):
    """A TFDS tagging dataset -> examples, the tags as their ClassLabel names."""
    available = tfds_reader.features(name)
    tag_feature = next((key for key in TFDS_TAG_FEATURES if key in available), None)
    if tag_feature is None:
        raise ValueError(
            f"TFDS {name!r} has no tag feature among {TFDS_TAG_FEATURES}; "
            f"it has {sorted(available)}.")
    names = tfds_reader.label_names(name, tag_feature)
    split = TFDS_SPLITS.get(name.split("/")[0], {}).get(split, split)
    return [{"tokens": list(row["tokens"]), "tags": [names[index] for index in row[tag_feature]]}
            for row in tfds_reader.load_tfds(name, split)]


# The synthetic set's words. Names and places are entities only in context.
FILLERS = ("the", "said", "went", "today", "and", "saw", "with", "a", "report", "meeting",
           "was", "quiet", "long", "then", "later", "again", "story", "talk", "visit",
           "letter", "new", "old", "after", "before", "team", "game", "won", "lost", "plan",
           "weather", "music", "morning")
PERSON_TRIGGERS = ("mr", "mrs")
PLACE_TRIGGERS = ("in", "from")
NAMES = ("anna", "boris", "chandrasekhar", "dmitri", "elisabeth", "fernando", "gwendolyn",
         "hiroshi", "ingrid", "jaroslav")
PLACES = ("paris", "oslo", "kathmandu", "ouagadougou", "reykjavik", "lima", "nairobi",
          "vladivostok")


def synthetic(split, size=None, seed=None):
    """A toy NER set that needs context: {"tokens", "tags"} examples.

    A sentence is 3-6 random segments: a filler word; a person ("mr" or
    "mrs", then one or two names: B-PER I-PER); a place ("in" or "from", then
    a place: B-LOC); or a decoy (a filler, then a name or place tagged O).
    So a name or place is an entity only after its trigger word, which a
    word-list lookup cannot tell. size: 2000 for train, else 300; each split
    has its own seed.
    """
    size = size or (2000 if split == "train" else 300)
    seed = seed if seed is not None else {"train": 0, "validation": 1, "test": 2}.get(split, 3)
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(size):
        tokens, tags = [], []
        for _ in range(rng.integers(3, 7)):
            kind = rng.choice(["filler", "person", "place", "decoy"], p=[0.35, 0.25, 0.2, 0.2])
            if kind == "filler":
                tokens += [rng.choice(FILLERS)]
                tags += ["O"]
            elif kind == "person":
                names = list(rng.choice(NAMES, size=rng.integers(1, 3), replace=False))
                tokens += [rng.choice(PERSON_TRIGGERS)] + names
                tags += ["O", "B-PER"] + ["I-PER"] * (len(names) - 1)
            elif kind == "place":
                tokens += [rng.choice(PLACE_TRIGGERS), rng.choice(PLACES)]
                tags += ["O", "B-LOC"]
            else:
                tokens += [rng.choice(FILLERS), rng.choice(NAMES + PLACES)]
                tags += ["O", "O"]
        examples.append({"tokens": [str(token) for token in tokens], "tags": tags})
    return examples


def load_examples(data, split, bad=None):
    """`data` (a CoNLL file, a folder of them, a TFDS name, or "") -> examples of `split`.

    A single file serves every split (handy for a quick run); "" is the
    synthetic set. A file's bad lines go to `bad` (see `parse_conll`).
    """
    if not data:
        return synthetic(split)
    if tf.io.gfile.exists(data):  # a file serves every split; a folder has one per split
        return read_conll(split_file(data, split, extensions=None), bad)
    return load_tfds(data, split)


def label_list(examples):
    """The tags seen in examples, sorted, "O" first (so "O" is id 0)."""
    tags = {tag for example in examples for tag in example["tags"]}
    return sorted(tags, key=lambda tag: (tag != "O", tag))
