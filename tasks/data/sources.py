"""Where a task's rows come from: one dispatcher over --data.

    ""                 the task's embedded default (no download)
    a TFDS name        "glue/sst2": tensorflow_datasets, for users with a network
    a file or folder   CSV, TSV or JSON Lines; a folder holds a file per split

Tasks whose data are not rows of columns (images, documents, SQuAD JSON,
CoNLL) keep their own readers and share `split_file` for folders.
"""

from tasks.data.text_files import read_text_file, split_file
from tasks.data.tfds_reader import is_tfds_name, load_tfds


def read_rows(data, split, fields=None, default=None):
    """The rows (dicts) of `split` of `data`, keeping `fields` (None: every column).

    default(split): the task's embedded rows, used when `data` is "".
    A missing field is an error naming the columns there are.
    """
    if not data:
        if default is None:
            raise ValueError("This task has no embedded data: set --data.")
        return default(split)
    if not is_tfds_name(data):
        return read_text_file(split_file(data, split), fields)
    rows = load_tfds(data, split)
    if fields is None or not rows:
        return rows
    missing = [field for field in fields if field not in rows[0]]
    if missing:
        raise ValueError(f"TFDS {data} has no feature {missing}; its features are "
                         f"{sorted(rows[0])}. Set --text_fields / --label_field.")
    return [{field: row[field] for field in fields} for row in rows]
