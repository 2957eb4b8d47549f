"""`python -m zoo`: list the presets, or build one and run a forward pass.

    python -m zoo                          # bert_tiny_uncased, random weights
    python -m zoo --preset=vit_base_patch16_224
    python -m zoo --list
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import zoo  # noqa: E402

flags.DEFINE_string("preset", "bert_tiny_uncased", "Preset to build (see --list).")
flags.DEFINE_bool("list", False, "Print the preset table and exit.")
flags.DEFINE_integer("batch_size", 2, "Examples in the demo batch.")
flags.DEFINE_integer("sequence_length", 16, "Tokens per example (text presets).")
FLAGS = flags.FLAGS


def weights_cell(preset):
    """Where zoo.load(name) gets the preset's weights (first source; more if any)."""
    if preset.weights is None:
        return "none (architecture only)"
    first, *others = preset.weights.sources
    first = first.split("#")[0]
    if first.startswith("hf://") and "@" in first:  # a pinned commit: its short form
        first = first[: first.index("@") + 8]
    return f"`{first}`" + (f" (+{len(others)} archive)" if others else "")


def preset_table():
    rows = ["| preset | family | parameters | weights | description |",
            "|---|---|---:|---|---|"]
    for name in zoo.available():
        preset = zoo.get_preset(name)
        rows.append(f"| {name} | {preset.family} | {preset.parameters:,} | "
                    f"{weights_cell(preset)} | {preset.description} |")
    return "\n".join(rows)


def demo_batch(model, batch_size, sequence_length):
    """Random inputs in the backbone's input format, the last tokens padded."""
    rng = np.random.default_rng(0)
    if isinstance(model, zoo.VitBackbone):
        shape = (batch_size,) + tuple(model.image_size) + (model.num_channels,)
        return rng.normal(size=shape).astype("float32")
    ids = rng.integers(1, model.vocab_size, (batch_size, sequence_length)).astype("int32")
    mask = np.ones_like(ids)
    mask[:, sequence_length * 3 // 4:] = 0
    return {"input_word_ids": ids * mask, "input_mask": mask,
            "input_type_ids": np.zeros_like(ids)}


def main(argv):
    del argv
    if FLAGS.list:
        print(preset_table())
        return
    try:
        preset = zoo.get_preset(FLAGS.preset)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    start = time.perf_counter()
    model = zoo.build(FLAGS.preset)
    print(f"{preset.name}: {preset.description}")
    print(f"built in {time.perf_counter() - start:.1f}s with {model.count_params():,} "
          f"parameters (published: {preset.parameters:,})")
    outputs = model.predict(demo_batch(model, FLAGS.batch_size, FLAGS.sequence_length),
                            verbose=0)
    for name, value in outputs.items():
        if isinstance(value, list):
            print(f"  {name}: {len(value)} x {value[0].shape}")
        else:
            print(f"  {name}: {value.shape} mean={value.mean():+.4f} std={value.std():.4f}")


def command():
    """The `kerasbert-zoo` console script: `python -m zoo`."""
    app.run(main)


if __name__ == "__main__":
    command()
