"""keras-hub presets (folders written by `save_to_preset`)."""

import json
import os


def is_keras_hub_preset(path):
    config = os.path.join(path, "config.json")
    if not (os.path.isdir(path) and os.path.exists(config)):
        return False
    with open(config) as file:
        registered = json.load(file).get("registered_name", "")
    return str(registered).startswith("keras_hub>")


def load_keras_hub(path, with_head=False, **overrides):
    raise NotImplementedError("keras-hub presets: not yet")
