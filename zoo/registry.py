"""Named presets -> backbones.

A preset records its family, its constructor arguments, a one-line
description and its published parameter count (counted as Hugging Face's
model classes count them).
"""

import dataclasses
import difflib

_FAMILIES = {}
_PRESETS = {}


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    family: str
    arguments: dict
    description: str
    parameters: int

    @property
    def backbone_class(self):
        return _FAMILIES[self.family]


def register_family(family, backbone_class):
    """Makes `family` a name presets can use for `backbone_class`."""
    _FAMILIES[family] = backbone_class


def register_preset(name, family, arguments, description, parameters):
    """Adds a preset; `parameters` is its published parameter count."""
    if name in _PRESETS:
        raise ValueError(f"Preset {name!r} is already registered.")
    if family not in _FAMILIES:
        raise ValueError(f"Unknown family {family!r} for preset {name!r}.")
    _PRESETS[name] = Preset(name, family, dict(arguments), description, parameters)


def register_presets(family, rows):
    """Registers (name, arguments, published parameters, description) rows."""
    for name, arguments, parameters, description in rows:
        register_preset(name, family, arguments, description, parameters)


def available():
    """Sorted names of every preset."""
    return sorted(_PRESETS)


def families():
    """Family name -> backbone class."""
    return dict(_FAMILIES)


def get_preset(name):
    """The Preset called `name`; an unknown name lists the close matches."""
    try:
        return _PRESETS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _PRESETS, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown preset {name!r}.{hint} zoo.available() lists all "
            f"{len(_PRESETS)} presets."
        ) from None


def build(name, **overrides):
    """A randomly initialised backbone of preset `name`.

    `overrides` replace preset arguments (e.g. `dropout=0.0`,
    `dtype="mixed_bfloat16"`, `return_attention_scores=True`).
    """
    preset = get_preset(name)
    arguments = {**preset.arguments, **overrides}
    arguments.setdefault("name", name)
    return preset.backbone_class(**arguments)
