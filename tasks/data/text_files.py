"""Local CSV, TSV and JSONL files of labelled text into example dicts."""

import csv
import json
import os


def read_lines(path):
    """The lines of a UTF-8 text file, in order, without their line ends (a
    byte-order mark dropped); blank lines kept, so line i is item i - 1."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        return [line.rstrip("\r\n") for line in file]


def read_text_file(path, fields, optional=()):
    """Rows of a .csv/.tsv (with a header) or .jsonl file, keeping `fields`
    (and the `optional` ones the file has).

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
    if rows:
        missing = [field for field in fields if field not in rows[0]]
        if missing:
            raise ValueError(f"{path} has no column {missing}; its columns are "
                             f"{sorted(rows[0])}. Set --text_fields / --label_field.")
    present = [field for field in optional if rows and field in rows[0]]
    return [{field: row[field] for field in [*fields, *present]} for row in rows]


def split_file(data, split):
    """The file of `split` for --data: a folder holding {split}.{csv,tsv,jsonl},
    or a single file standing for the train split (+ `validation` beside it)."""
    if os.path.isdir(data):
        for extension in (".csv", ".tsv", ".jsonl"):
            path = os.path.join(data, split + extension)
            if os.path.exists(path):
                return path
        raise FileNotFoundError(f"No {split}.csv, {split}.tsv or {split}.jsonl in {data}.")
    return data
