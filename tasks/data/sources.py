"""Where a task's rows come from: one dispatcher over --data.

    ""                 the task's embedded default (no download)
    a TFDS name        "glue/sst2": tensorflow_datasets, for users with a network
    a file or folder   CSV, TSV or JSON Lines; a folder holds a file per split

Tasks whose data are not rows of columns (images, documents, SQuAD JSON,
CoNLL) keep their own readers and share `split_file` for folders.
"""

from tasks.data.bad_rows import Row
from tasks.data.text_files import read_text_file, split_file
from tasks.data.tfds_reader import is_tfds_name, load_tfds


def read_rows(data, split, fields=None, default=None, bad=None):
    """The rows (dicts) of `split` of `data`, keeping `fields` (None: every column).

    default(split): the task's embedded rows, used when `data` is "".
    A missing field is an error naming the columns there are. Each row is a
    `bad_rows.Row` that knows where it was read; a file's bad lines go to
    `bad` (a bad_rows.BadExamples; default: an error naming them).
    """
    if not data:
        if default is None:
            raise ValueError("This task has no embedded data: set --data.")
        return [Row(row, f"the embedded {split!r} set, row {number}")
                for number, row in enumerate(default(split), start=1)]
    if not is_tfds_name(data):
        return read_text_file(split_file(data, split), fields, bad=bad)
    rows = load_tfds(data, split)
    if fields is not None and rows:
        missing = [field for field in fields if field not in rows[0]]
        if missing:
            raise ValueError(f"TFDS {data} has no feature {missing}; its features are "
                             f"{sorted(rows[0])}. Set --text_fields / --label_field.")
    return [Row(row if fields is None else {field: row[field] for field in fields},
                f"TFDS {data} ({split}), example {number}")
            for number, row in enumerate(rows, start=1)]
