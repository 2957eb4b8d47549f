"""The state dict of a Hugging Face model folder, as numpy arrays.

Reads `model.safetensors`, `pytorch_model.bin` (without torch), and their
sharded forms (`*.index.json`), preferring safetensors as transformers does.
"""

import json
import os

from zoo.convert.safetensors_io import read_safetensors
from zoo.convert.torch_bin import read_torch_bin

_FILES = (
    ("model.safetensors", read_safetensors),
    ("model.safetensors.index.json", read_safetensors),
    ("pytorch_model.bin", read_torch_bin),
    ("pytorch_model.bin.index.json", read_torch_bin),
)


def weight_file(folder):
    """The weights file transformers would read in `folder`, or None."""
    for name, _ in _FILES:
        if os.path.exists(os.path.join(folder, name)):
            return name
    return None


def read_state_dict(folder):
    """name -> numpy array of the model in `folder`."""
    name = weight_file(folder)
    if name is None:
        raise FileNotFoundError(
            f"{folder} has no model.safetensors or pytorch_model.bin (nor a sharded "
            "index): not a Hugging Face model folder."
        )
    reader = dict(_FILES)[name]
    path = os.path.join(folder, name)
    if not name.endswith(".index.json"):
        return reader(path)
    with open(path) as file:
        shards = sorted(set(json.load(file)["weight_map"].values()))
    state = {}
    for shard in shards:
        state.update(reader(os.path.join(folder, shard)))
    return state
