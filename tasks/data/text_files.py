"""Local CSV, TSV and JSONL files of labelled text into example dicts."""

import csv
import json
import os

import tensorflow as tf

from tasks.data.bad_rows import BadExamples, Row

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


def read_text_file(path, fields=None, optional=(), bad=None):
    """Rows of a .csv/.tsv (with a header) or .jsonl file, keeping `fields`
    (None: every column) and the `optional` ones the file has.

    Each row becomes a `bad_rows.Row` {field: value} that knows its line. A
    field no row has is an error naming the file, the field and the columns
    it has. A bad line (not JSON, not an object, a missing field, a stray
    quote, too many or too few cells) goes to `bad` (a bad_rows.BadExamples;
    default: an error naming path:line, lines counted from 1, header
    included).
    """
    bad = bad or BadExamples(skippable=False)
    extension = os.path.splitext(path)[1].lower()
    if extension == ".jsonl":
        rows = _jsonl_rows(path, bad)
        columns = {key for row in rows for key in row}
    elif extension in (".csv", ".tsv"):
        columns, rows = _table_rows(path, "\t" if extension == ".tsv" else ",", bad)
    else:
        raise ValueError(f"{path}: expected a .csv, .tsv or .jsonl file.")
    if fields is None:
        return rows
    if rows:
        missing = [field for field in fields if field not in columns]
        if missing:
            raise ValueError(f"{path} has no column {missing}; its columns are "
                             f"{sorted(columns)}. Set --text_fields / --label_field.")
    present = [field for field in optional if field in columns]
    kept = []
    for row in rows:
        absent = [field for field in fields if field not in row]  # JSONL only
        if absent:
            bad.report(row.where, f"no field {', '.join(map(repr, absent))} (it has "
                       f"{', '.join(map(repr, sorted(row)))})")
            continue
        kept.append(Row({field: row[field] for field in [*fields, *present] if field in row},
                        row.where))
    return kept


def _jsonl_rows(path, bad):
    """The objects of a JSON Lines file as Rows; blank lines skipped."""
    rows = []
    with open(path, encoding="utf-8-sig") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            place = f"{path}:{number}"
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                bad.report(place, f"not JSON ({error.msg} at column {error.colno})")
                continue
            if not isinstance(value, dict):
                bad.report(place, f"a JSON {type(value).__name__}, not an object "
                           "{\"field\": value, ...}")
                continue
            rows.append(Row(value, place))
    return rows


def _table_rows(path, delimiter, bad):
    """(header, Rows) of a CSV/TSV file; blank lines skipped.

    csv.DictReader would join the lines after a stray quote into one cell
    and pad or extend a row whose cell count is off; here those are bad rows.
    """
    with open(path, encoding="utf-8-sig", newline="") as file:
        lines = file.readlines()
    header, rows = None, []
    for first, last, cells, error in _records(lines, delimiter):
        place = f"{path}:{first}"
        if error is None and not cells:
            continue  # a blank line
        if header is None:
            if error is not None:
                raise ValueError(f"{place}: the header row is malformed ({error}).")
            header = cells
            continue
        if error is not None:
            fix = "Remove or close the stray quote"
            if last > first:
                problem = (f"an unmatched quote (\") joins lines {first}-{last} into one row "
                           f"({error})")
            elif "'\"'" in error or "end of data" in error:
                problem = f"a stray quote (\") ({error})"
            else:
                problem, fix = f"an unreadable row ({error})", "Fix the row"
            bad.report(place, problem, fix=fix)
        elif len(cells) != len(header):
            problem = (f"{len(cells)} cell{'s' * (len(cells) != 1)} where the header has "
                       f"{len(header)} ({', '.join(header)})")
            if len(cells) < len(header):
                problem += f": no {', '.join(map(repr, header[len(cells):]))}"
            bad.report(place, problem)
        else:
            rows.append(Row(zip(header, cells), place))
    return header or [], rows


class _Lines:
    """An iterator over lines[start:] that tells how far a csv.reader has read."""

    def __init__(self, lines, start):
        self.lines, self.position = lines, start

    def __iter__(self):
        return self

    def __next__(self):
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _records(lines, delimiter):
    """(first line, last line, cells, error) of each CSV record of `lines`
    (1-based; cells [] for a blank line; error None or what is wrong).

    Strict quoting: a quote not followed by the delimiter, or one never
    closed, is an error. In a TSV a cell holding both a tab and a line
    break is one too: a stray quote joined rows (a CSV may quote a line
    break in a cell; a TSV row with tabs in a cell is not plausible). After
    an error, reading resumes on the line after the record's first, so a
    stray quote costs one row, not the rows it swallowed.
    """
    start = 0
    while start < len(lines):
        source = _Lines(lines, start)
        reader = csv.reader(source, delimiter=delimiter, strict=True)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield start + 1, source.position, None, "csv: " + str(error).replace("\t", "\\t")
                start += 1
                break
            if (delimiter == "\t" and source.position - start > 1
                    and any("\t" in cell and ("\n" in cell or "\r" in cell) for cell in cells)):
                yield start + 1, source.position, None, "a cell holds tabs and line breaks"
                start += 1
                break
            yield start + 1, source.position, cells, None
            start = source.position


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
