"""Local CSV, TSV and JSONL files of labelled text into example dicts."""

import csv
import json
import os

import tensorflow as tf

# The file names each split may have (CoNLL-2003's eng.testa is its validation set).
SPLIT_NAMES = {
    "train": ("train", "eng.train"),
    "validation": ("validation", "valid", "dev", "eng.testa"),
    "dev": ("dev", "valid", "validation", "eng.testa"),
    "test": ("test", "eng.testb"),
}


def read_lines(path):
    """The lines of a UTF-8 text file, in order, without their line ends (a
    byte-order mark dropped); blank lines kept, so line i is item i - 1."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        return [line.rstrip("\r\n") for line in file]


def read_text_file(path, fields=None, optional=()):
    """Rows of a .csv/.tsv (with a header) or .jsonl file, keeping `fields`
    (None: every column) and the `optional` ones the file has.

    Each row becomes {field: value}; a missing field is an error naming the
    file, the field and the columns it has.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension == ".jsonl":
        with open(path, encoding="utf-8") as file:
            rows = [json.loads(line) for line in file if line.strip()]
    elif extension in (".csv", ".tsv"):
        with open(path, encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file, delimiter="\t" if extension == ".tsv" else ","))
    else:
        raise ValueError(f"{path}: expected a .csv, .tsv or .jsonl file.")
    if fields is None:
        return rows
    if rows:
        missing = [field for field in fields if field not in rows[0]]
        if missing:
            raise ValueError(f"{path} has no column {missing}; its columns are "
                             f"{sorted(rows[0])}. Set --text_fields / --label_field.")
    present = [field for field in optional if rows and field in rows[0]]
    return [{field: row[field] for field in [*fields, *present]} for row in rows]


def _named(file, name):
    """`name` itself, or `name.<extension>`."""
    return file == name or (file.startswith(name + ".") and "." not in file[len(name) + 1:])


def _name_and_more(file, name):
    """`name` going on after "-" or "_" (SQuAD's train-v1.1.json)."""
    return file.startswith((name + "-", name + "_"))


def split_file(data, split, extensions=(".csv", ".tsv", ".jsonl")):
    """The file of `split` for --data: `data` itself when it is a file (it
    serves every split), else the one file in the folder named for the split
    (SPLIT_NAMES: validation may be dev, valid, eng.testa): `name` or
    `name.<extension>` first (train.tsv beside validation_matched.tsv), else
    a name that goes on after "-" or "_" (train-v1.1.json), ending in one of
    `extensions` (None: any). Two candidates of the same kind are an error."""
    if not tf.io.gfile.isdir(data):
        return data
    files = sorted(tf.io.gfile.listdir(data))
    allowed = [file for file in files
               if extensions is None or file.lower().endswith(tuple(extensions))]
    for name in SPLIT_NAMES.get(split, (split,)):
        for matches in (_named, _name_and_more):
            found = [file for file in allowed if matches(file, name)]
            if len(found) > 1:
                raise ValueError(f"Several files for split {split!r} in {data}: {found}; "
                                 "keep one.")
            if found:
                return os.path.join(data, found[0])
    wanted = "/".join(SPLIT_NAMES.get(split, (split,)))
    kinds = ", ".join(extensions) if extensions else "any extension"
    raise FileNotFoundError(f"No file for split {split!r} in {data} (named {wanted}, "
                            f"{kinds}); it has {files}.")
