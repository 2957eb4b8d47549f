"""What a user names -> a local checkpoint: a path, a hub handle, or a preset.

    zoo.load("path/to/folder")                      the folder, as it is
    zoo.load("hf://google-bert/bert-base-uncased")  the hub's copy, cached (zoo.hub)
    zoo.load("bert_base_uncased")                   the preset's published weights
    zoo.load("bert-base-uncased")                   the same: a preset's Hugging Face name

A preset's weights come from the first of its sources already cached, else
from the first (its hub handle, pinned to a revision).
"""

import dataclasses
import difflib
import os
from typing import Optional

from absl import logging

from zoo import hub, registry


@dataclasses.dataclass(frozen=True)
class Located:
    path: str                                 # a local folder or file
    preset: Optional[registry.Preset] = None  # when the weights are a preset's

    @property
    def lower_case(self):
        """The preset's published casing, or None (the files decide)."""
        return self.preset.weights.lower_case if self.preset is not None else None


def _hub_repos():
    """Hugging Face repo id -> the published preset whose weights it holds."""
    repos = {}
    for name in registry.available():
        preset = registry.get_preset(name)
        for source in (preset.weights.sources if preset.weights else ()):
            if source.startswith("hf://"):
                repos[hub.huggingface.parse(source[len("hf://"):])[0]] = preset
    return repos


def preset_of_hub_name(name):
    """The preset whose Hugging Face repo is `name` ("OWNER/NAME" or "NAME"), or None."""
    return next((preset for repo, preset in _hub_repos().items()
                 if name in (repo, repo.split("/")[-1])), None)


def preset_weights(preset):
    """The local path of `preset`'s published weights, fetched on first use."""
    if preset.weights is None:
        raise ValueError(
            f"Preset {preset.name!r} has no published weights ({preset.description.rstrip('.')}"
            f"): zoo.build({preset.name!r}) gives its architecture randomly initialised; "
            "`python -m zoo --list` shows which presets have weights.")
    for source in preset.weights.sources:
        cached = hub.cached_path(source)
        if cached is not None:
            logging.info("Preset %s: weights from %s (cached in %s).", preset.name, source,
                         cached)
            return cached
    failures = []
    for source in preset.weights.sources:  # the next source when one cannot be had
        logging.info("Preset %s: downloading its weights from %s.", preset.name, source)
        try:
            return hub.resolve(source)
        except hub.HubError as error:
            failures.append(error)
            logging.warning("Preset %s: %s", preset.name, error)
    if len(failures) == 1:
        raise failures[0]
    raise type(failures[0])(f"Preset {preset.name!r}: none of its weight sources could be had:"
                            + "".join(f"\n  {error}" for error in failures))


def locate(name):
    """Where the checkpoint `name` is on disk, fetching it if it is a handle or preset."""
    text = os.fspath(name)
    if hub.is_handle(text):
        return Located(hub.resolve(text))
    if os.path.exists(text) or os.path.exists(text + ".index"):
        return Located(text)
    preset = (registry.get_preset(text) if text in registry.available()
              else preset_of_hub_name(text))
    if preset is not None:
        if text != preset.name:
            logging.info("%s is the Hugging Face name of preset %s.", text, preset.name)
        return Located(preset_weights(preset), preset)
    if os.sep in text and os.path.isdir(os.path.dirname(text)):
        return Located(text)  # a file named in a checkpoint folder (a TF1 prefix): its folder
    raise FileNotFoundError(f"No checkpoint at {text!r}: it is not a file or folder, a hub "
                            "handle (hf://OWNER/NAME, kaggle://..., https://...zip) or a "
                            f"preset name.{_suggestions(text)}")


def _suggestions(text):
    repos = _hub_repos()
    names = {preset.name: preset.name for preset in repos.values()}
    names.update({repo: f"hf://{repo}" for repo in repos})
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(names[c]) for c in close)}?" if close else ""


def resolve(name):
    """The local path of checkpoint `name` (a path, hub handle or preset name)."""
    return locate(name).path
