"""Fine-tuning tokens/s with length bucketing vs padding every batch to 128.

    python -m benchmarks.bucketing [--model=bert_tiny_uncased] [--vocab_size=30522]
        [--steps=128] [--batch_size=32] [--repeats=5] [--jit_compile] [--output=FILE]

A realistic length mix: token counts drawn from a log-normal (mean ~25
tokens, long tail, capped at sequence_length), texts of whole-word tokens
from a full-size (30,522-entry) vocabulary with Zipfian word frequencies.
Both sides train on the same examples per pass (whole bucketing windows,
so the same set, batched differently), the same model and optimizer (AdamW,
as `tasks.run` builds it), the same cores, and real
`TextClassificationTask.build_dataset` batches: padded to 128, or with
options["bucket"] (16/32/64/128). Timed: `model.train_on_batch` steps
(forward + backward + AdamW update) on batches made beforehand, so
tokenization is not counted (bucketing tokenizes the same texts once, like
fixed padding). Every width is traced (with --jit_compile, XLA-compiled)
before timing. Tokens are real (unpadded) tokens, the same count on both
sides. Steps alternate between the sides (padded step i, bucketed step i)
so both see the same load on a shared machine; each pass is repeated and the
rate from each step's median over the passes is reported, with every
pass's rate.
Compare ratios, not absolute numbers.
"""

import csv
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import write_results  # noqa: E402

import zoo  # noqa: E402
from kerasbert.text import Preprocessor, WordPieceTokenizer  # noqa: E402
from tasks.training import optimization  # noqa: E402
from tasks.base import TaskConfig  # noqa: E402
from tasks.classification import TextClassificationTask  # noqa: E402

flags.DEFINE_string("model", "bert_tiny_uncased", "zoo preset (randomly initialised).")
flags.DEFINE_integer("vocab_size", 30522, "Vocabulary (and embedding table) size; 30,522 is "
                     "the uncased BERT checkpoints', 8,000 what tasks.run learns from scratch.")
flags.DEFINE_integer("steps", 128, "Timed training steps per pass (rounded to the window).")
flags.DEFINE_integer("batch_size", 32, "Examples per step.")
flags.DEFINE_integer("sequence_length", 128, "Fixed padding length and largest bucket.")
flags.DEFINE_list("bucket_lengths", None, "Bucket lengths (default: powers of two, "
                  "options[\"bucket\"]).")
flags.DEFINE_integer("window", 64, "Bucketing window (batches grouped together).")
flags.DEFINE_float("mean_tokens", 25.0, "Mean packed length of the length mix.")
flags.DEFINE_float("sigma", 0.75, "Log-normal sigma of the length mix (skew).")
flags.DEFINE_integer("repeats", 5, "Timed passes per side (at least 5); each step's median "
                     "over the passes is reported.", lower_bound=5)
flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step (one program per width).")
flags.DEFINE_integer("seed", 0, "Data and model seed.")
flags.DEFINE_string("output", None, "Also write the results to this JSON file.")
FLAGS = flags.FLAGS

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def length_mix(count, rng):
    """Packed lengths (with [CLS] and [SEP]): log-normal, mean ~mean_tokens, capped."""
    mu = np.log(FLAGS.mean_tokens) - FLAGS.sigma ** 2 / 2
    lengths = np.round(rng.lognormal(mu, FLAGS.sigma, count)).astype(int)
    return np.clip(lengths, 3, FLAGS.sequence_length)


def write_data(folder, count, rng):
    words = [f"w{i}" for i in range(FLAGS.vocab_size - len(SPECIALS))]
    with open(os.path.join(folder, "vocab.txt"), "w") as file:
        file.write("\n".join(SPECIALS + words) + "\n")
    zipf = 1.0 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    lengths = length_mix(count, rng)
    with open(os.path.join(folder, "train.csv"), "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        drawn = iter(rng.choice(len(words), int((lengths - 2).sum()), p=zipf))
        for length in lengths:
            text = " ".join(words[next(drawn)] for _ in range(length - 2))
            writer.writerow([text, int(rng.integers(2))])
    return lengths


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    steps = max(FLAGS.window, FLAGS.steps // FLAGS.window * FLAGS.window)
    count = steps * FLAGS.batch_size
    rng = np.random.default_rng(FLAGS.seed)
    with tempfile.TemporaryDirectory() as folder:
        lengths = write_data(folder, count, rng)
        preprocessor = Preprocessor(WordPieceTokenizer(os.path.join(folder, "vocab.txt")),
                                    sequence_length=FLAGS.sequence_length)
        sides = {}
        for name, options in (("padded", {}),
                              ("bucketed", {"bucket": True, "bucket_window": FLAGS.window,
                                            "bucket_lengths": FLAGS.bucket_lengths})):
            task = TextClassificationTask(TaskConfig(
                data=folder, sequence_length=FLAGS.sequence_length, num_classes=2,
                options={"labels": ["0", "1"], **options}))
            dataset = task.build_dataset("train", preprocessor, FLAGS.batch_size, training=True,
                                         seed=FLAGS.seed)
            sides[name] = list(dataset.take(steps))  # one pass over the examples

    tokens = {name: sum(int(x["input_mask"].numpy().sum()) for x, _ in batches)
              for name, batches in sides.items()}
    assert tokens["padded"] == tokens["bucketed"] == lengths.sum()
    widths = [int(x["input_word_ids"].shape[1]) for x, _ in sides["bucketed"]]

    backbone = zoo.build(FLAGS.model, vocab_size=FLAGS.vocab_size,
                         max_sequence_length=max(512, FLAGS.sequence_length))
    model = task.build_model(backbone)
    optimizer = optimization.create_optimizer(2e-5, 10 ** 6, warmup_fraction=0.1)
    model.compile(optimizer=optimizer, loss=task.build_losses(), jit_compile=FLAGS.jit_compile)
    warm = {}  # trace (and with XLA compile) every width before timing
    for batches in sides.values():
        for x, y in batches:
            if warm.setdefault(x["input_word_ids"].shape[1], 0) < 2:
                warm[x["input_word_ids"].shape[1]] += 1
                model.train_on_batch(x, y)

    # Steps alternate between the sides (padded step i, bucketed step i, ...),
    # so both see the same load on a shared machine.
    times = {name: np.zeros([FLAGS.repeats, steps]) for name in sides}
    for repeat in range(FLAGS.repeats):
        for step in range(steps):
            for name, batches in sides.items():
                start = time.perf_counter()
                model.train_on_batch(*batches[step])  # returns numpy logs: synchronous
                times[name][repeat, step] = time.perf_counter() - start

    histogram = {w: widths.count(w) for w in sorted(set(widths))}
    padded_positions = steps * FLAGS.batch_size * FLAGS.sequence_length
    print(f"model: {FLAGS.model} ({model.count_params():,} parameters, vocabulary "
          f"{FLAGS.vocab_size:,}), cores: {os.cpu_count()}, batch: {FLAGS.batch_size}, "
          f"steps per pass: {steps}, passes: {FLAGS.repeats}, jit_compile: {FLAGS.jit_compile}")
    print(f"lengths: mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, "
          f"p95 {np.percentile(lengths, 95):.0f}, max {lengths.max()} "
          f"({(lengths == FLAGS.sequence_length).mean():.1%} at {FLAGS.sequence_length})")
    print(f"bucketed batches per width: {histogram} (mean {np.mean(widths):.1f}; padding "
          f"{1 - tokens['bucketed'] / (np.sum(widths) * FLAGS.batch_size):.0%} vs "
          f"{1 - tokens['padded'] / padded_positions:.0%} padded to {FLAGS.sequence_length})")
    per_pass = {name: tokens[name] / t.sum(axis=1) for name, t in times.items()}
    rate = {name: tokens[name] / np.median(t, axis=0).sum() for name, t in times.items()}
    for name in sides:
        label = f"padded to {FLAGS.sequence_length}" if name == "padded" else name
        print(f"{label + ':':<16} {rate[name]:>9,.0f} tokens/s (each step's median of "
              f"{FLAGS.repeats}; passes: {', '.join(f'{r:,.0f}' for r in per_pass[name])})")
    typical = np.median(times["bucketed"], axis=0)
    by_width = {w: 1000 * np.median([t for t, v in zip(typical, widths) if v == w])
                for w in histogram}
    print("step time by width (median): " + ", ".join(
        f"{w}: {ms:.1f} ms" for w, ms in by_width.items())
        + f"; padded to {FLAGS.sequence_length}: "
        f"{1000 * np.median(times['padded']):.1f} ms")
    paired = per_pass["bucketed"] / per_pass["padded"]
    ratio = rate["bucketed"] / rate["padded"]
    print(f"ratio (bucketed / padded): {ratio:.2f} "
          f"(per pass: {', '.join(f'{r:.2f}' for r in paired)})")
    write_results({"model": FLAGS.model, "batch_size": FLAGS.batch_size, "steps": steps,
                   "repeats": FLAGS.repeats, "jit_compile": FLAGS.jit_compile,
                   "mean_length": float(lengths.mean()), "tokens_per_second": rate,
                   "per_pass": {name: rates.tolist() for name, rates in per_pass.items()},
                   "ratios": {"bucketed / padded": ratio}}, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
