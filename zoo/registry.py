"""Named presets -> backbones.

A preset records its family, its constructor arguments, a one-line
description, its published parameter count (counted as Hugging Face's
model classes count them) and, for a published model, where its weights
live (`Weights`): `zoo.build(name)` is the random architecture,
`zoo.load(name)` the published weights.
"""

import dataclasses
import difflib
from typing import Optional

_FAMILIES = {}
_PRESETS = {}


@dataclasses.dataclass(frozen=True)
class Weights:
    """Where a preset's published weights live.

    sources: checkpoint handles zoo.load reads, the preferred first: a hub
        handle pinned to a revision where the hub has one, then the original
        archive (its sha256 as a `#sha256=` fragment where known). zoo.load
        takes the first one already cached, else the first.
    lower_case: the casing the weights were trained with (text models): it
        decides the tokenizer, whatever the downloaded files suggest.
    """

    sources: tuple
    lower_case: Optional[bool] = None

    def __post_init__(self):
        if not self.sources:
            raise ValueError("Weights needs at least one source.")


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    family: str
    arguments: dict
    description: str
    parameters: int
    weights: Optional[Weights] = None  # None: an architecture only, no published weights

    @property
    def backbone_class(self):
        return _FAMILIES[self.family]


def register_family(family, backbone_class):
    """Makes `family` a name presets can use for `backbone_class`."""
    _FAMILIES[family] = backbone_class


def register_preset(name, family, arguments, description, parameters, weights=None):
    """Adds a preset; `parameters` is its published parameter count, `weights`
    where its published weights live (None for an architecture only)."""
    if name in _PRESETS:
        raise ValueError(f"Preset {name!r} is already registered.")
    if family not in _FAMILIES:
        raise ValueError(f"Unknown family {family!r} for preset {name!r}.")
    _PRESETS[name] = Preset(name, family, dict(arguments), description, parameters, weights)


def register_presets(family, rows, weights=None):
    """Registers (name, arguments, published parameters, description) rows;
    `weights` maps the names of published presets to their `Weights`."""
    weights = dict(weights or {})
    unknown = set(weights) - {row[0] for row in rows}
    if unknown:
        raise ValueError(f"Weights for presets that are not in the {family} rows: "
                         f"{sorted(unknown)}.")
    for name, arguments, parameters, description in rows:
        register_preset(name, family, arguments, description, parameters, weights.get(name))


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
