"""Bad examples in training data: an error naming where and what, or skipped.

A row without a label, a label the task does not know, a line that is not
JSON, a stray quote, a SQuAD answer that is not in its context, an image
that does not decode: readers find these when they read a split, and hand
each to one `BadExamples`, which either raises a ValueError naming the
place (file:line, or the image's path), the problem and the fix, or, with
--skip_bad_examples, logs a warning and counts the example as skipped
(`Task.skipped_examples`, reported in metrics.json). Nothing is dropped
silently, and nothing bad reaches tf.data, where it would fail far from
its cause.
"""

import math

from absl import logging

FLAG = "--skip_bad_examples"


class Row(dict):
    """A row's fields (a plain dict to everyone else) that also knows `where`
    it was read ("path:line"), so a check made later can name it."""

    def __init__(self, fields, where):
        super().__init__(fields)
        self.where = where


class BadRow(Exception):
    """Raised by a reader's parsing of one example, caught where the example
    is read and handed to `BadExamples.report`: (problem, fix)."""

    def __init__(self, problem, fix="Fix the row"):
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def where(row, fallback):
    """Where `row` was read, or `fallback` for rows made in code."""
    return getattr(row, "where", None) or fallback


class BadExamples:
    """How the reading of one split treats a bad example.

    skip: False raises at the first one; True logs a warning per example and
    counts it (`count`, and `counts[split]` when a dict is given: the task's
    skipped_examples). skippable: False for readers that must keep every
    row (feature extraction's row i is text i): their errors do not offer
    the flag.
    """

    def __init__(self, skip=False, counts=None, split=None, skippable=True):
        self.skip = skip and skippable
        self.skippable = skippable
        self.count = 0
        self._counts, self._split = counts, split
        if counts is not None and self.skip:
            counts[split] = 0

    def report(self, place, problem, fix="Fix the row", what="rows"):
        """One bad example at `place` (file:line or a path): raise, or warn and count.

        problem: what is wrong, e.g. "no label ('label' is empty or missing)";
        fix: what to do about it, e.g. "Add it to --labels"; what: the plural
        of the thing skipped ("rows", "sentences", "questions", "images").
        """
        if not self.skip:
            hint = f", or pass {FLAG} to skip such {what}" if self.skippable else ""
            raise ValueError(f"{place}: {problem}. {fix}{hint}.")
        logging.warning("%s: %s; skipped (%s).", place, problem, FLAG)
        self.count += 1
        if self._counts is not None:
            self._counts[self._split] = self.count


def is_missing(value):
    """Whether a label cell holds nothing: None (JSON null) or blank."""
    return value is None or not str(value).strip()


def no_label(field):
    """The problem of a row whose label cell holds nothing."""
    return f"no label ({field!r} is empty or missing)"


class ClassLabels:
    """Checks labels against class names: check(value) -> (problem, fix) when
    `value` is no usable class, else None.

    labels: the names in id order; num_classes: the head's outputs (ids 0 to
    num_classes - 1), or None; given: `labels` are the --labels option (else
    the training labels); field: the label's column; thing:
    what the fix fixes ("row", "example").
    """

    def __init__(self, labels, num_classes, given, field, thing="row"):
        self.names = [str(label) for label in labels]
        self.ids = {name: i for i, name in enumerate(self.names)}
        self.num_classes, self.given, self.field, self.thing = (num_classes, given, field,
                                                                   thing)

    def check(self, value):
        thing = self.thing
        if is_missing(value):
            return no_label(self.field), f"Fix the {thing}"
        name = str(value)
        if name not in self.ids:
            if self.given:
                return (f"label {name!r} is not one of --labels {self.names}",
                        f"Add it to --labels or fix the {thing}")
            return (f"label {name!r} is not among the training labels {self.names}",
                    f"Fix the {thing}, or give every label (training ones included) with "
                    "--labels")
        if self.num_classes is not None and self.ids[name] >= self.num_classes:
            return (f"label {name!r} has id {self.ids[name]}, out of range of "
                    f"--num_classes={self.num_classes} (labels in id order: {self.names})",
                    f"Raise --num_classes or fix the {thing}")
        return None


def number_problem(value, field):
    """(problem, fix) when a regression label is not a finite number, else None."""
    if is_missing(value):
        return no_label(field), "Fix the row"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"label {str(value)!r} is not a number", "Fix the row"
    if not math.isfinite(number):
        return f"label {str(value)!r} is not a finite number", "Fix the row"
    return None
