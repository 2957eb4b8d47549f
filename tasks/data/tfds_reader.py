"""TFDS datasets by name, for users with a network (tests use mock data).

`tensorflow_datasets` is imported only here, and only when a TFDS name is
given, so the rest of the project never waits on it.
"""


def load_tfds(name, split, data_dir=None):
    """The examples of a TFDS split as a list of dicts of Python values."""
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, data_dir=data_dir)
    return [_python(example) for example in tfds.as_numpy(dataset)]


def features(name, data_dir=None):
    """The feature dict of TFDS dataset `name` (its builder's info)."""
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir).info.features


def label_names(name, field="label", data_dir=None):
    """Class names of a TFDS ClassLabel feature (or a sequence of them), or None."""
    feature = features(name, data_dir)[field]
    feature = getattr(feature, "feature", feature)  # Sequence(ClassLabel): per token
    return list(getattr(feature, "names", None) or []) or None


def _python(value):
    if isinstance(value, dict):
        return {key: _python(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "tolist"):
        value = value.tolist()
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value] if isinstance(
            value, list) else value
    return value


def is_tfds_name(data):
    """A TFDS name looks like "glue/sst2" or "imdb_reviews", not a path."""
    import os

    return bool(data) and not os.path.exists(data) and "." not in os.path.basename(data)
