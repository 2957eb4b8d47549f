"""A LiteRT export against the SavedModel it comes from: size, speed, parity.

    python -m benchmarks.litert [--shape=bert_tiny|bert_base] [--batch_size=1]
        [--repeats=7] [--parity_lines=200] [--output=litert_bert_tiny.json]

A text classifier (random zoo backbone of the shape; a unigram SentencePiece
model with XLM-R's ids learned from the bundled corpus, so raw text goes
into the .tflite file) is exported twice with `export.litert.export_litert`,
float32 and int8, and once as a SavedModel. Then, on the same batch of
corpus texts packed to 128 positions, alternating, median of the rounds:
the SavedModel's serve_ids (tf.saved_model.load, as TF Serving runs it),
LiteRT float32 and int8 serve_ids, and LiteRT's serving_default on the raw
texts. Figures: each side's speed as a ratio to the SavedModel's, file
sizes, and the largest logit difference from the SavedModel (on
--parity_lines corpus lines, through the raw-text signatures).
"""

import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

SEQUENCE_LENGTH = 128


def measure(shape, batch_size, repeats, parity_lines):
    import numpy as np
    import tensorflow as tf

    import export
    import zoo
    from benchmarks import timing
    from export import litert, litert_runtime
    from kerasbert.text import SentencePieceTokenizer, build_sentencepiece_model
    from tasks.base import TaskConfig
    from tasks.classification import TextClassificationTask
    from tests.text_corpus import corpus, training_corpus

    with tempfile.TemporaryDirectory() as folder:
        model_file = build_sentencepiece_model(training_corpus(4000), 4000,
                                               os.path.join(folder, "spiece"),
                                               hard_vocab_limit=False)
        tokenizer = SentencePieceTokenizer(model_file, fairseq_ids=True)
        run = os.path.join(folder, "run")
        backbone = zoo.BertBackbone(
            vocab_size=tokenizer.vocabulary.size, num_layers=shape.layers,
            hidden_size=shape.hidden, num_heads=shape.heads,
            intermediate_size=shape.intermediate, dropout=0.0)
        task = TextClassificationTask(TaskConfig(options={"labels": ["a", "b", "c"]}))
        model = task.build_model(backbone)
        os.makedirs(run)
        model.save(os.path.join(run, "model.keras"))
        zoo.save_tokenizer(tokenizer, run)
        export.write_spec(task.serving_spec(SEQUENCE_LENGTH, "longest_first"), run)

        saved = tf.saved_model.load(export.export_model(run, os.path.join(folder, "saved")))
        versions = {quantize: litert.export_litert(run, os.path.join(folder, "lite"),
                                                   quantize=quantize)
                    for quantize in (None, "int8")}
        files = {quantize: os.path.join(version, litert.MODEL_FILE)
                 for quantize, version in versions.items()}
        interpreters = {quantize: litert_runtime.load(path, num_threads=os.cpu_count())
                        for quantize, path in files.items()}
        preprocessor = zoo.load_preprocessor(run, sequence_length=SEQUENCE_LENGTH)

        texts = corpus(batch_size, seed=1)
        ids = {name: value.numpy() for name, value in preprocessor(texts).items()}
        tensors = {name: tf.constant(value) for name, value in ids.items()}
        serve_ids = saved.signatures["serve_ids"]
        calls = {
            "saved_model": lambda: serve_ids(**tensors)["logits"].numpy(),
            "litert_float32": lambda: litert_runtime.call(interpreters[None], "serve_ids", ids),
            "litert_int8": lambda: litert_runtime.call(interpreters["int8"], "serve_ids", ids),
            "litert_float32_text": lambda: litert_runtime.call(
                interpreters[None], "serving_default", {"text": texts}),
        }
        times = timing.alternate(calls, repeats)

        lines = corpus(parity_lines, seed=2)
        reference = np.concatenate([
            saved.signatures["serving_default"](text=tf.constant(lines[i:i + 50]))[
                "logits"].numpy() for i in range(0, len(lines), 50)])
        logits = {quantize: np.concatenate([litert_runtime.call(
            interpreter, "serving_default", {"text": lines[i:i + 50]})["logits"]
            for i in range(0, len(lines), 50)]) for quantize, interpreter in
            interpreters.items()}
        return {
            "shape": shape.name, "batch_size": batch_size, "sequence_length": SEQUENCE_LENGTH,
            "threads": os.cpu_count(), "repeats": repeats, "parity_lines": parity_lines,
            "median_seconds": {name: timing.median(value) for name, value in times.items()},
            "speed_vs_saved_model": {name: timing.paired_ratio(times["saved_model"], value)
                                     for name, value in times.items()},
            "bytes": {"float32": os.path.getsize(files[None]),
                      "int8": os.path.getsize(files["int8"]),
                      "float32_weights": sum(int(np.prod(w.shape)) * 4 for w in model.weights),
                      "tokenizer_model": os.path.getsize(model_file)},
            "largest_logit_difference": {
                "float32": float(np.abs(logits[None] - reference).max()),
                "int8": float(np.abs(logits["int8"] - reference).max())},
            # How much the logits vary across texts: a random model's barely do,
            # so its labels say nothing about int8 (tests/export/test_litert.py
            # checks labels on a model whose outputs depend on the input).
            "logit_spread_across_texts": float(np.ptp(reference, axis=0).max()),
        }


def main(argv):
    del argv
    from absl import flags

    from benchmarks import peers

    values = flags.FLAGS
    result = measure(peers.SHAPES[values.shape], values.batch_size, values.repeats,
                     values.parity_lines)
    text = json.dumps(result, indent=2)
    print(text)
    if values.output:
        with open(values.output, "w") as file:
            file.write(text + "\n")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_enum("shape", "bert_tiny", ["bert_tiny", "bert_base"], "Backbone shape.")
    flags.DEFINE_integer("batch_size", 1, "Texts per call (1: an app classifying one text).")
    flags.DEFINE_integer("repeats", 7, "Timed rounds (median).")
    flags.DEFINE_integer("parity_lines", 200, "Corpus lines the logits are compared on.")
    flags.DEFINE_string("output", None, "Where to write the JSON (default: print only).")
    app.run(main)
