"""Declarative weight mapping: rules of (source name, target variable, transform).

A converter for one family and one format is a list of `Rule`s. `{i}` in a
rule stands for a layer (or, for ALBERT, a group) index and is expanded
`num_layers` times. `assign` checks everything before it writes anything, so
a checkpoint either loads whole or raises one `ConversionError` naming every
missing, unexpected and mis-shaped variable: a partial load never happens.
"""

import dataclasses
import fnmatch
from typing import Callable

import numpy as np


def identity(x):
    return x


def transpose(x):
    """PyTorch Linear weight [out, in] -> Keras kernel [in, out]."""
    return np.ascontiguousarray(x.T)


@dataclasses.dataclass(frozen=True)
class Rule:
    source: str
    target: str
    transform: Callable = identity
    inverse: Callable = None  # target -> source, for writing checkpoints back

    def expand(self, count):
        if "{i}" not in self.source:
            return [(self.source, self.target)]
        return [(self.source.format(i=i), self.target.format(i=i)) for i in range(count)]


def rules(pairs, prefix_source="", prefix_target=""):
    """Rules from (source, target, transform[, inverse]) tuples, with prefixes."""
    return [
        Rule(prefix_source + s, prefix_target + t, *rest) for s, t, *rest in pairs
    ]


class ConversionError(ValueError):
    """A checkpoint that does not fit the model, with every reason listed."""


@dataclasses.dataclass
class LoadReport:
    """What a conversion used and what it left out (and why)."""

    source: str
    loaded: list  # (source name, target path)
    left_out: list  # (source name, reason)

    def summary(self):
        lines = [f"Loaded {len(self.loaded)} variables from {self.source}."]
        if self.left_out:
            lines.append(f"Left out {len(self.left_out)}:")
            lines += [f"  {name}: {reason}" for name, reason in self.left_out]
        return "\n".join(lines)


def _hint(name, source_shape, target_shape):
    if "embedding" in name and len(source_shape) == 2 and source_shape[1:] == target_shape[1:]:
        return ("the vocabulary (or position/segment table) size differs: the "
                "checkpoint was made with another vocabulary or preset")
    return "the checkpoint was made for another configuration (wrong preset or config?)"


def assign(model, table, source, num_layers, left_out=(), description="checkpoint",
           keep_initialised=()):
    """Writes `source` (name -> array) into `model` by `table`, all or nothing.

    `left_out` is a list of (glob pattern, reason) for source variables that
    are known and deliberately not loaded (a head when loading a backbone,
    optimizer slots); anything else unused is an error. `keep_initialised`
    lists path prefixes of model variables the checkpoint does not have and
    that deliberately keep their initial values (a pooler missing from an
    MLM-only checkpoint); any other uncovered model variable is an error.
    Returns a LoadReport.
    """
    variables = {variable.path: variable for variable in model.weights}
    pending, problems, used, claimed = [], [], set(), set()
    for rule in table:
        for source_name, target_path in rule.expand(num_layers):
            claimed.add(target_path)
            if target_path not in variables:
                problems.append(f"model has no variable {target_path!r} (for {source_name!r})")
                continue
            if source_name not in source:
                problems.append(f"missing in {description}: {source_name!r} "
                                f"(needed for {target_path!r})")
                continue
            value = rule.transform(np.asarray(source[source_name]))
            target_shape = tuple(variables[target_path].shape)
            if tuple(value.shape) != target_shape:
                problems.append(
                    f"shape mismatch: {source_name!r} is {tuple(np.shape(source[source_name]))}"
                    f" (as {tuple(value.shape)} after conversion) but {target_path!r} is "
                    f"{target_shape}: {_hint(target_path, value.shape, target_shape)}"
                )
                continue
            used.add(source_name)
            pending.append((source_name, target_path, value))

    uncovered = sorted(path for path in set(variables) - claimed
                       if not path.startswith(tuple(keep_initialised)))
    problems += [f"no checkpoint variable for model variable {path!r}" for path in uncovered]

    report_left_out = []
    for name in sorted(set(source) - used):
        reason = next((why for pattern, why in left_out if fnmatch.fnmatchcase(name, pattern)),
                      None)
        if reason is None:
            problems.append(f"unexpected in {description}: {name!r} "
                            f"{tuple(np.shape(source[name]))}: no rule maps it")
        else:
            report_left_out.append((name, reason))

    if problems:
        raise ConversionError(
            f"Cannot load {description} into {model.name} ({len(problems)} problems, "
            "nothing was loaded):\n  " + "\n  ".join(problems)
        )
    for _, target_path, value in pending:
        variable = variables[target_path]
        variable.assign(value.astype(variable.dtype))
    return LoadReport(description, [(s, t) for s, t, _ in pending], report_left_out)


def extract(model, table, num_layers):
    """The inverse of `assign`: source name -> array, read from `model`."""
    variables = {variable.path: variable for variable in model.weights}
    state = {}
    for rule in table:
        inverse = rule.inverse or (transpose if rule.transform is transpose else identity)
        for source_name, target_path in rule.expand(num_layers):
            state[source_name] = np.ascontiguousarray(
                inverse(np.asarray(variables[target_path].numpy()))
            )
    return state
