"""An exported SavedModel's raw-text signature vs its ids signature.

    python -m benchmarks.export [--shape=bert_tiny|bert_base] [--batch_size=32]
        [--repeats=7] [--quick]

Measures what tokenizing in the graph costs a server: a text classifier
(random zoo backbone of the shape, WordPiece vocabulary learned from the
bundled corpus) is exported with `export.export_model`, loaded back with
`tf.saved_model.load` as TF Serving would, and called with the same batch
both ways: `serving_default` on raw strings (tokenize, pack to the export's
sequence length, encode, classify) and `serve_ids` on the already-packed
ids. The two alternate; the figure is ids-time / raw-time, the raw path's
throughput as a fraction of the ids path's (1.0 = tokenizing is free).
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

SEQUENCE_LENGTH = 128


def measure(shape, batch_size, repeats, calls_per_timing=3):
    import numpy as np
    import tensorflow as tf

    import export
    import zoo
    from benchmarks import timing
    from kerasbert.text import build_wordpiece_vocabulary
    from tasks.base import TaskConfig
    from tasks.classification import TextClassificationTask
    from tests.text_corpus import corpus, training_corpus

    with tempfile.TemporaryDirectory() as folder:
        vocab_file = os.path.join(folder, "vocab.txt")
        build_wordpiece_vocabulary(training_corpus(4000), 8000, lower_case=True,
                                   output_file=vocab_file)
        preprocessor = zoo.load_preprocessor(folder, sequence_length=SEQUENCE_LENGTH)
        vocab_size = sum(1 for _ in open(vocab_file))
        backbone = zoo.BertBackbone(
            vocab_size=vocab_size, num_layers=shape.layers, hidden_size=shape.hidden,
            num_heads=shape.heads, intermediate_size=shape.intermediate, dropout=0.0)
        task = TextClassificationTask(TaskConfig(data=folder, sequence_length=SEQUENCE_LENGTH,
                                                 num_classes=2, options={"labels": ["0", "1"]}))
        model = task.build_model(backbone)
        spec = task.serving_spec(SEQUENCE_LENGTH, "longest_first")
        path = export.export_model(None, os.path.join(folder, "export", "model"), model=model,
                                   spec=spec, preprocessor=preprocessor,
                                   warmup_requests=False)
        served = tf.saved_model.load(path)
        raw_signature = served.signatures["serving_default"]
        ids_signature = served.signatures["serve_ids"]

        texts = tf.constant(corpus(batch_size, seed=1))
        ids = {name: tf.constant(value) for name, value in preprocessor(texts).items()}
        same = np.allclose(raw_signature(text=texts)["probabilities"],
                           ids_signature(**ids)["probabilities"], atol=1e-5)

        def raw():
            for _ in range(calls_per_timing):
                raw_signature(text=texts)["probabilities"].numpy()

        def packed():
            for _ in range(calls_per_timing):
                ids_signature(**ids)["probabilities"].numpy()

        times = timing.alternate({"raw_text": raw, "ids": packed}, repeats)
    tokens = int(ids["input_mask"].numpy().sum())
    seconds = {name: timing.median(values) / calls_per_timing for name, values in times.items()}
    return {"shape": shape.name, "batch_size": batch_size, "sequence_length": SEQUENCE_LENGTH,
            "mean_tokens": tokens / batch_size, "same_probabilities": bool(same),
            "seconds_per_call": seconds, "all_seconds": times,
            "ratios": {"raw_text / ids throughput": seconds["ids"] / seconds["raw_text"]}}


def table(result):
    seconds = result["seconds_per_call"]
    return (f"export {result['shape']}, batch {result['batch_size']} (mean "
            f"{result['mean_tokens']:.0f} tokens, padded to {result['sequence_length']}): "
            f"raw text {1000 * seconds['raw_text']:.1f} ms, ids {1000 * seconds['ids']:.1f} ms "
            f"per call; raw_text / ids throughput: "
            f"{result['ratios']['raw_text / ids throughput']:.2f}x")


def main(argv):
    from benchmarks import write_results

    del argv
    from benchmarks import peers

    shape = peers.QUICK if FLAGS.quick else peers.SHAPES[FLAGS.shape]
    result = measure(shape, FLAGS.batch_size, FLAGS.repeats)
    print(table(result))
    write_results(result, FLAGS.output)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("shape", "bert_tiny", "Shape name from benchmarks.peers.SHAPES.")
    flags.DEFINE_integer("batch_size", 32, "Strings per call.")
    flags.DEFINE_integer("repeats", 7, "Timed rounds, at least 5.")
    flags.DEFINE_bool("quick", False, "A tiny shape: checks that the benchmark runs.")
    flags.DEFINE_string("output", None, "Also write the results to this JSON file.")
    FLAGS = flags.FLAGS
    app.run(main)
