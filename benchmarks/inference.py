"""Inference of one BERT shape in kerasbert, keras-hub and Hugging Face, and
the machine's matmul peak, measured in the same run.

    python -m benchmarks.inference [--shape=bert_base|bert_tiny] [--dtype=float32|bfloat16]
        [--repeats=5] [--quick] [--output=benchmarks/results/inference.json]

Method: every side is built and warmed up (two calls), then the sides
alternate call by call for --repeats rounds (kerasbert, keras-hub, Hugging
Face, kerasbert, ...) so a noisy shared machine slows them alike; each
side's figure is its median call. Reported: sequences/s per side, kerasbert
over each peer (a ratio from the same run), and each side's fraction of the
measured matmul peak of the same dtype (FLOPs from `peers.Shape.flops`).
Compare ratios, not absolute numbers; no test asserts on them.
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import peers  # noqa: E402

flags.DEFINE_enum("shape", "bert_base", ["bert_base", "bert_tiny"],
                  "bert_base: batch 8 x 128; bert_tiny: batch 32 x 128.")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
flags.DEFINE_integer("repeats", 5, "Timed rounds (each side once per round), at least 5.")
flags.DEFINE_bool("quick", False, "A tiny shape and 5 rounds: checks that the benchmark runs.")
flags.DEFINE_string("output", os.path.join("benchmarks", "results", "inference.json"),
                    "JSON results (its folder is created).")
FLAGS = flags.FLAGS


def matmul_peak(dtype, size=2048, repeats=5):
    """FLOP/s of the machine's best square matmul in `dtype` (XLA-compiled)."""
    a = tf.random.normal([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)
    product = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)
    product(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / min(times)


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(shape, dtype, repeats):
    """{"sides": {library: {...}}, "ratios": {...}, "peak_flops": ...} for one shape."""
    makers = (peers.make_kerasbert, peers.make_keras_hub, peers.make_hugging_face)
    sides = [made for made in (make(shape, dtype) for make in makers) if made is not None]
    for call, _ in sides:
        call()
        call()
    times = {info["library"]: [] for _, info in sides}
    for _ in range(repeats):
        for call, info in sides:
            times[info["library"]].append(timed(call))
    peak = matmul_peak(dtype)
    results = {}
    for _, info in sides:
        seconds = float(np.median(times[info["library"]]))
        results[info["library"]] = {
            **info, "median_seconds": seconds, "all_seconds": times[info["library"]],
            "sequences_per_second": shape.batch / seconds,
            "fraction_of_peak": shape.flops() / seconds / peak}
    ours = results["kerasbert"]["sequences_per_second"]
    ratios = {f"kerasbert / {name}": ours / side["sequences_per_second"]
              for name, side in results.items() if name != "kerasbert"}
    return {"shape": shape.__dict__, "dtype": dtype, "peak_flops": peak, "sides": results,
            "ratios": ratios}


def table(result):
    lines = [f"{result['shape']['name']} {result['dtype']} (batch {result['shape']['batch']} "
             f"x {result['shape']['sequence']}; matmul peak "
             f"{result['peak_flops'] / 1e9:.0f} GFLOP/s)",
             "| library | sequences/s | fraction of peak |", "|---|---|---|"]
    for name, side in result["sides"].items():
        lines.append(f"| {name} | {side['sequences_per_second']:.2f} | "
                     f"{side['fraction_of_peak']:.0%} |")
    lines += [f"{name}: {ratio:.2f}x" for name, ratio in result["ratios"].items()]
    return "\n".join(lines)


def main(argv):
    del argv
    if FLAGS.repeats < 5:
        raise ValueError("--repeats must be at least 5 (a median of fewer is noise here).")
    shape = peers.QUICK if FLAGS.quick else {"bert_base": peers.BERT_BASE,
                                             "bert_tiny": peers.BERT_TINY}[FLAGS.shape]
    result = measure(shape, FLAGS.dtype, FLAGS.repeats)
    print(table(result))
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w") as file:
        json.dump(result, file, indent=2)


if __name__ == "__main__":
    app.run(main)
