"""Strings/s from raw text to packed model inputs: our tf.data path vs HF tokenizers.

    python -m benchmarks.tokenization [--lines=20000] [--batch_size=256]

Both sides get the same corpus, vocabulary (learned here from a generated
corpus, so nothing is downloaded), sequence length, truncation and padding,
and the same cores. Prints both rates and their ratio; timings on a shared
machine vary, so compare ratios from one run, not absolute numbers.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import timing, write_results  # noqa: E402

from kerasbert.text.preprocessor import Preprocessor  # noqa: E402
from kerasbert.text.wordpiece import WordPieceTokenizer  # noqa: E402
from tests.text_corpus import corpus, training_corpus  # noqa: E402

flags.DEFINE_integer("lines", 20000, "Strings to encode per timed pass.")
flags.DEFINE_integer("batch_size", 256, "Strings per batch on both sides.")
flags.DEFINE_integer("sequence_length", 128, "Packed length.")
flags.DEFINE_integer("vocab_size", 8000, "WordPiece vocabulary size to learn.")
flags.DEFINE_integer("repeats", 5, "Timed passes per side (alternating, after two warm-up "
                     "passes); the median is reported.")
flags.DEFINE_string("output", None, "Also write the results to this JSON file.")
FLAGS = flags.FLAGS


def learn_vocabulary(folder):
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(training_corpus(20000), vocab_size=FLAGS.vocab_size,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    trainer.save_model(folder)
    return os.path.join(folder, "vocab.txt")


def main(argv):
    del argv
    lines = (corpus(5000) * (FLAGS.lines // 5000 + 1))[: FLAGS.lines]
    with tempfile.TemporaryDirectory() as folder:
        vocab_file = learn_vocabulary(folder)
        preprocessor = Preprocessor(WordPieceTokenizer(vocab_file, lower_case=True),
                                    sequence_length=FLAGS.sequence_length)
        dataset = (tf.data.Dataset.from_tensor_slices(lines).batch(FLAGS.batch_size)
                   .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
                   .prefetch(tf.data.AUTOTUNE))

        def ours():
            for _ in dataset:
                pass

        from tokenizers import BertWordPieceTokenizer

        reference = BertWordPieceTokenizer(vocab_file, lowercase=True)
        reference.enable_truncation(FLAGS.sequence_length)
        reference.enable_padding(length=FLAGS.sequence_length)
        batches = [lines[i:i + FLAGS.batch_size] for i in range(0, len(lines), FLAGS.batch_size)]

        def theirs():
            for batch in batches:
                reference.encode_batch(batch)

        times = timing.alternate({"ours": ours, "theirs": theirs}, FLAGS.repeats)
        ours_rate = len(lines) / timing.median(times["ours"])
        theirs_rate = len(lines) / timing.median(times["theirs"])
    print(f"cores: {os.cpu_count()}, lines: {len(lines)}, batch: {FLAGS.batch_size}, "
          f"sequence_length: {FLAGS.sequence_length}")
    print(f"kerasbert tf.data (tokenize + pack): {ours_rate:,.0f} strings/s")
    print(f"HF tokenizers encode_batch:          {theirs_rate:,.0f} strings/s")
    print(f"ratio (ours / HF): {ours_rate / theirs_rate:.2f}")
    write_results({"lines": len(lines), "batch_size": FLAGS.batch_size,
                   "strings_per_second": {"kerasbert": ours_rate, "hf-tokenizers": theirs_rate},
                   "ratios": {"kerasbert / hf-tokenizers": ours_rate / theirs_rate}},
                  FLAGS.output)


if __name__ == "__main__":
    app.run(main)
