"""Settings declared once, typed, each one a flag.

A task kind declares its options as a dataclass of `option(default, help)`
fields (`Task.Options`); the runner's settings are one too
(`tasks.training.runner.RunSettings`). From that one declaration:

- `parse(Options, values, owner)` turns a dict (the Python API, or the
  flags a command line gave) into the dataclass, refusing a name the owner
  does not have or a value of the wrong type, with the valid names in the
  message;
- `define_flags(...)` makes an absl flag of every field, named as the
  field, with its help, type and choices, grouped in `--helpfull` under
  its owner (a flag several tasks share is listed under each).
"""

import dataclasses
import difflib
import typing

import numpy as np


class OptionError(ValueError):
    """An option the owner does not have, or a value it cannot take."""


def option(default, help, choices=None, may_change=False):
    """A dataclass field with its help text (and allowed values, for strings).

    may_change: a run resumed in its model_dir may take another value (more
    steps, another evaluation frequency); the others change what is trained
    and are refused (tasks.training.model_dir)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": tuple(choices) if choices else None,
        "may_change": may_change})


def may_change(options_class):
    """The names of `options_class`'s options a resumed run may change."""
    return {field.name for field in dataclasses.fields(options_class)
            if field.metadata.get("may_change")}


def fields(options_class):
    """The option fields of `options_class` with their resolved types: [(Field, type)]."""
    hints = typing.get_type_hints(options_class)
    return [(field, hints[field.name]) for field in dataclasses.fields(options_class)
            if "help" in field.metadata]


def names(options_class):
    return [field.name for field, _ in fields(options_class)]


def parse(options_class, values, owner):
    """`values` (a dict, an `options_class` instance or None) as an `options_class`.

    owner: who the options are for, named in errors ("--task=tagging").
    """
    if isinstance(values, options_class):
        return values
    if dataclasses.is_dataclass(values):
        values = dataclasses.asdict(values)
    values = dict(values or {})
    declared = dict((field.name, (field, kind)) for field, kind in fields(options_class))
    for name in values:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise OptionError(f"{owner} has no option {name!r}.{hint} {describe(options_class, owner)}")
    parsed = {}
    for name, value in values.items():
        field, kind = declared[name]
        try:
            parsed[name] = coerce(value, kind, field.metadata["choices"])
        except (TypeError, ValueError) as error:
            raise OptionError(f"{owner}: option {name} {error} "
                              f"{describe(options_class, owner)}") from None
    return options_class(**parsed)


def describe(options_class, owner):
    """"Options of OWNER: name (type, default d), ..." for error messages."""
    listed = [f"{field.name} ({type_name(kind)}, default {field.default!r})"
              for field, kind in fields(options_class)]
    return f"Options of {owner}: {', '.join(listed) or 'none'}."


def coerce(value, kind, choices=None):
    """`value` as type `kind` (bool, int, float, str, Optional[...], tuple[T, ...]).

    Lists also come as a "1,2,3" string (a flag or a config file); scalars
    must already have their type (an int is taken for a float).
    """
    kind, optional = _unwrap(kind)
    if value is None:
        if optional:
            return None
        raise TypeError(f"takes {type_name(kind)}, got None.")
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise TypeError(f"takes a list of {type_name(element)}, got {value!r}.")
        return tuple(_scalar(item, element, choices, in_list=True) for item in value)
    return _scalar(value, kind, choices)


def _scalar(value, kind, choices, in_list=False):
    """`value` checked as `kind`. A list's items may come as text (a flag's
    "1,2,3"), and a list of names takes numbers (TFDS labels are ints)."""
    if in_list and isinstance(value, str) and kind in (int, float):
        value = _from_text(value, kind)
    if in_list and kind is str and isinstance(value, (int, np.integer)) \
            and not isinstance(value, (bool, np.bool_)):
        value = str(value)
    if kind is bool:
        ok = isinstance(value, (bool, np.bool_))
    elif kind in (int, float):
        numbers = (int, np.integer) if kind is int else (int, float, np.number)
        ok = isinstance(value, numbers) and not isinstance(value, (bool, np.bool_))
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise TypeError(f"takes {type_name(kind)}, got {value!r} ({type(value).__name__}).")
    value = kind(value)
    if choices and value not in choices:
        raise ValueError(f"is one of {', '.join(map(str, choices))}; got {value!r}.")
    return value


def _from_text(value, kind):
    try:
        return kind(value)
    except ValueError:
        raise TypeError(f"takes {type_name(kind)}, got {value!r}.") from None


def _unwrap(kind):
    """(the type inside Optional[...], whether None is allowed)."""
    if typing.get_origin(kind) is typing.Union:
        inner = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return inner[0], True
    return kind, False


def type_name(kind):
    kind, optional = _unwrap(kind)
    if typing.get_origin(kind) is tuple:
        name = f"list of {type_name(typing.get_args(kind)[0])}"
    else:
        name = kind.__name__
    return f"{name} or None" if optional else name


# ------------------------------------------------------------------ flags


@dataclasses.dataclass
class _Shared:
    """One option name as every owner that declares it declares it."""

    kind: object  # the type (the same for every owner)
    help: str  # the owners' help texts, each once
    choices: tuple  # every owner's allowed values, each once
    field: dataclasses.Field  # the first owner's
    owners: list  # owner names, in order
    defaults: dict  # shown default -> [owners]


def _shared(groups):
    """{option name: _Shared} over `groups` ([(owner, options class)])."""
    declared = {}  # name -> [(owner, field, type)]
    for owner, options_class in groups:
        for field, kind in fields(options_class):
            declared.setdefault(field.name, []).append((owner, field, kind))
    shared = {}
    for name, entries in declared.items():
        if len({_unwrap(kind)[0] for _, _, kind in entries}) > 1:
            raise TypeError(f"Option {name!r} has different types in "
                            f"{', '.join(owner for owner, _, _ in entries)}.")
        defaults = {}
        for owner, field, _ in entries:
            defaults.setdefault(_show(field.default), []).append(owner)
        shared[name] = _Shared(
            kind=entries[0][2], field=entries[0][1], owners=[owner for owner, _, _ in entries],
            help=" ".join(dict.fromkeys(field.metadata["help"] for _, field, _ in entries)),
            choices=tuple(dict.fromkeys(choice for _, field, _ in entries
                                        for choice in field.metadata["choices"] or ())),
            defaults=defaults)
    return shared


def define_flags(groups, flag_values, defaults=True, heading="{}".format):
    """An absl flag for every field of every options class in `groups`.

    groups: [(owner, options class)]; heading(owner) is what the flag is
        listed under in --helpfull. A field several owners declare (the same
        name and type) is one flag, listed under each.
    defaults: True: a flag's default is the field's; False: None, so a flag
        that was not given leaves each owner its own default (task options,
        whose defaults differ by task; the help says each).
    """
    for name, option in _shared(groups).items():
        help_text = option.help
        if not defaults and set(option.defaults) != {"None"}:  # None: the help says
            help_text += " Default: " + ("; ".join(
                f"{value} ({', '.join(owners)})" for value, owners in option.defaults.items())
                if len(option.defaults) > 1 else next(iter(option.defaults))) + "."
        flag = _define(name, option.kind, option.field.default if defaults else None,
                       help_text, option.choices, flag_values,
                       module_name=heading(option.owners[0]))
        for other in option.owners[1:]:
            flag_values.register_flag_by_module(heading(other), flag)


def _show(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _define(name, kind, default, help_text, choices, flag_values, module_name):
    from absl import flags

    base, _ = _unwrap(kind)
    common = dict(flag_values=flag_values, module_name=module_name)
    if typing.get_origin(base) is tuple:
        default = list(map(str, default)) if default is not None else None
        flags.DEFINE_list(name, default, help_text, **common)
    elif base is bool:
        flags.DEFINE_bool(name, default, help_text, **common)
    elif base is int:
        flags.DEFINE_integer(name, default, help_text, **common)
    elif base is float:
        flags.DEFINE_float(name, default, help_text, **common)
    elif choices:
        flags.DEFINE_enum(name, default, list(choices), help_text, **common)
    else:
        flags.DEFINE_string(name, default, help_text, **common)
    return flag_values[name]


def markdown_table(groups):
    """A Markdown table of every option of `groups` ([(owner, options class)]):
    one row per option, its owners and default(s), for the docs."""
    rows = ["| option | tasks (default) | type | meaning |", "|---|---|---|---|"]
    for name, option in sorted(_shared(groups).items()):
        tasks = "; ".join(f"{', '.join(f'`{owner}`' for owner in owners)} ({value})"
                          for value, owners in option.defaults.items())
        kind = type_name(option.kind) + (
            f": {' / '.join(option.choices)}" if option.choices else "")
        rows.append(f"| `--{name}` | {tasks} | {kind} | {option.help.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def given_flags(options_class, flag_values):
    """{name: value as the field's type} of the flags for `options_class`'s
    fields that were set (on the command line or in a flagfile)."""
    return {field.name: coerce(flag_values[field.name].value, kind)
            for field, kind in fields(options_class)
            if field.name in flag_values and flag_values[field.name].present}
