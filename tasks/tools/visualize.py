"""`python -m tasks.tools.visualize`: attention maps of any text backbone, as a PNG and a page.

    python -m tasks.tools.visualize --model=runs/sst2/model.keras --text="the movie was great" \
        --out=attention/
    python -m tasks.tools.visualize --model=bert-base-uncased/ --text="Where is the cat?" \
        --text_b="The cat sat on the mat." --out=attention/ --layer=9 --head=7
    python -m tasks.tools.visualize --model=bert_tiny_uncased --vocab_file=vocab.txt \
        --text="random weights, for a look at the plumbing" --out=attention/

Writes into --out:
  attention.png   one heatmap per layer (rows) and head (columns): query tokens
                  down, key tokens across, every panel on one 0-1 colour scale.
  attention.html  one self-contained page (no network): pick a layer and a
                  head, see lines from each query token to the keys it
                  attends to above --threshold; opens at --layer / --head.
and prints a JSON summary (paths, tokens, layers, heads). Layers and heads
count from 1 here, in the picture and on the page. Only real tokens are
shown, not padding. `--model` is anything `zoo.load` reads (a tasks.run
model_dir or its model.keras included; the tokenizer comes from beside it),
or a preset name: random weights, and --vocab_file gives the vocabulary.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags (defined only when run as a command, so importing
    this module next to tasks.run, which has --model too, costs nothing)."""
    flags.DEFINE_string("model", None, "A checkpoint zoo.load reads (HF folder, .keras, TF1 "
                        "checkpoint, keras-hub preset, a tasks.run model_dir or its "
                        "model.keras), a hub handle (hf://OWNER/NAME, kaggle://..., https://...zip), "
                        "or a preset name (random init; needs --vocab_file).")
    flags.DEFINE_string("text", None, "The text to look at.")
    flags.DEFINE_string("text_b", None, "Second text of a pair (packed after [SEP]).")
    flags.DEFINE_string("out", None, "Folder for attention.png and attention.html.")
    flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt: required with a preset, "
                        "replaces the checkpoint's own vocabulary otherwise.")
    flags.DEFINE_bool("lower_case", True, "Lower-case the text for --vocab_file.")
    flags.DEFINE_integer("sequence_length", 128, "Packed length; longer texts are truncated. "
                         "Left at its default, capped to the model's positions.")
    flags.DEFINE_integer("layer", None, "Layer the page opens at, 1-based (default: the last).")
    flags.DEFINE_integer("head", 1, "Head the page opens at, 1-based.")
    flags.DEFINE_float("threshold", 0.05, "The page draws lines for weights above this.")
    flags.DEFINE_integer("seed", 0, "Seed of a preset's random initialisation.")
    flags.mark_flags_as_required(["model", "text", "out"])


MODEL_OVERRIDES = dict(return_attention_scores=True, dropout=0.0, attention_dropout=0.0)


def wordpiece_preprocessor(vocab_file, lower_case, sequence_length):
    from kerasbert.text import Preprocessor, WordPieceTokenizer

    return Preprocessor(WordPieceTokenizer(vocab_file, lower_case=lower_case),
                        sequence_length=sequence_length)


def load_backbone(model, vocab_file=None, lower_case=True, seed=0):
    """(backbone with attention outputs, checkpoint path or None) for --model."""
    import keras

    import zoo
    from zoo.text_backbone import TextBackbone

    if zoo.hub.is_handle(model) or os.path.exists(model) or os.path.exists(model + ".index"):
        path = model  # zoo.load reads a tasks.run model_dir as its model.keras
        backbone = zoo.load(path, **MODEL_OVERRIDES)
        if isinstance(backbone, zoo.SentenceEncoder):  # its backbone is what attends
            backbone = backbone.backbone
    elif model in zoo.available():
        if not issubclass(zoo.get_preset(model).backbone_class, TextBackbone):
            raise app.UsageError(f"--model={model} is not a text backbone.")
        if vocab_file is None:
            raise app.UsageError(
                f"--model={model} is a preset: random weights and no vocabulary. Give "
                "--vocab_file=vocab.txt (a WordPiece vocabulary), or a checkpoint path.")
        path = None
        vocabulary = wordpiece_preprocessor(vocab_file, lower_case, 8).vocabulary
        keras.utils.set_random_seed(seed)
        backbone = zoo.build(model, vocab_size=len(vocabulary), **MODEL_OVERRIDES)
    else:
        raise app.UsageError(f"--model={model} is neither a path nor a preset "
                             "(`python -m zoo --list` lists the presets).")
    if not isinstance(backbone, TextBackbone):
        raise app.UsageError(f"--model={model} holds a {type(backbone).__name__}, not a "
                             "text backbone.")
    return backbone, path


def sequence_length_for(backbone, requested, explicit):
    """`requested`, capped to the model's positions unless the user asked for it."""
    positions = backbone.get_config().get("max_sequence_length")
    if positions is None or requested <= positions:
        return requested
    if explicit:
        raise app.UsageError(f"--sequence_length={requested} is longer than the model's "
                             f"{positions} positions.")
    return positions


def visualize(backbone, preprocessor, text, out, text_b=None, layer=None, head=1,
              threshold=0.05):
    """Writes out/attention.png and out/attention.html; returns the summary.

    layer, head: the page's first view, 1-based (layer None: the last).
    """
    from tasks.tools import attention_maps

    tokens, probs = attention_maps.attention_maps(backbone, preprocessor, text, text_b)
    num_layers, num_heads = probs.shape[:2]
    layer = num_layers if layer is None else layer
    if not (1 <= layer <= num_layers and 1 <= head <= num_heads):
        raise app.UsageError(f"--layer={layer} --head={head}: this model has layers "
                             f"1..{num_layers} and heads 1..{num_heads} (1-based).")
    os.makedirs(out, exist_ok=True)
    png = os.path.join(out, "attention.png")
    page = os.path.join(out, "attention.html")
    panels = attention_maps.write_png(tokens, probs, png)
    lines = attention_maps.write_html(tokens, probs, page, layer - 1, head - 1, threshold,
                                      heading=f"Attention: {backbone.name}")
    return {"png": png, "html": page, "tokens": tokens, "num_tokens": len(tokens),
            "num_layers": int(num_layers), "num_heads": int(num_heads), "panels": panels,
            "initial_view": {"layer": layer, "head": head, "lines": lines},
            "threshold": threshold}


def main(argv):
    del argv
    backbone, path = load_backbone(FLAGS.model, FLAGS.vocab_file, FLAGS.lower_case,
                                   FLAGS.seed)
    length = sequence_length_for(backbone, FLAGS.sequence_length,
                                 FLAGS["sequence_length"].present)
    if FLAGS.vocab_file is not None:
        preprocessor = wordpiece_preprocessor(FLAGS.vocab_file, FLAGS.lower_case, length)
    else:
        import zoo

        preprocessor = zoo.load_preprocessor(path, sequence_length=length)
    vocab_size = backbone.get_config().get("vocab_size")
    if vocab_size is not None and len(preprocessor.vocabulary) > vocab_size:
        raise app.UsageError(f"The vocabulary has {len(preprocessor.vocabulary)} tokens, "
                             f"the model embeds {vocab_size}.")
    summary = visualize(backbone, preprocessor, FLAGS.text, FLAGS.out, FLAGS.text_b,
                        FLAGS.layer, FLAGS.head, FLAGS.threshold)
    print(json.dumps({"model": FLAGS.model, **summary}, indent=2, ensure_ascii=False))


def command():
    """The `kerasbert-visualize` console script: `python -m tasks.tools.visualize`."""
    define_flags()
    logging.set_verbosity(logging.WARNING)
    app.run(main)


if __name__ == "__main__":
    command()
