"""Inference of one BERT shape in kerasbert, keras-hub and Hugging Face, and
the machine's matmul peak, measured in the same run.

    python -m benchmarks.inference [--shape=bert_base|bert_tiny] [--dtype=float32|bfloat16]
        [--repeats=5] [--quick] [--output=benchmarks/results/inference.json]

Method (`benchmarks.timing`): every side is built and warmed up (two
calls), then the sides alternate call by call for --repeats rounds; each
side's figure is its median call. Reported: sequences/s per side, kerasbert
over each peer (the median over rounds of the peer's time / ours in the
same round), each side's fraction of the measured matmul peak of the same
dtype (FLOPs from `peers.Shape.flops`), and, for inference, the share of
each side's time that the model's matmuls alone need
(`timing.matmul_floor`): 100% would mean everything else is free.
Compare ratios, not absolute numbers; no test asserts on them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags  # noqa: E402

from benchmarks import peers, timing, write_results  # noqa: E402


def measure(shape, dtype, repeats, training=False, steps=1):
    """{"sides": {library: {...}}, "ratios": {...}, "peak_flops": ...}.

    Inference times one `predict` (one batch) per call; training times one
    `fit` of `steps` batches per call, and FLOPs count forward + backward
    (3x the forward). A lower precision also times kerasbert in float32
    (side "kerasbert float32"), so its gain is a ratio from the same run."""
    if training:
        made = [peers.make_fit("kerasbert", shape, dtype, steps),
                peers.make_fit("keras-hub", shape, dtype, steps),
                peers.make_hugging_face_train(shape, dtype, steps)]
    else:
        made = [peers.make_predict("kerasbert", shape, dtype),
                peers.make_predict("keras-hub", shape, dtype),
                peers.make_hugging_face_predict(shape, dtype)]
    if dtype != "float32":  # what the lower precision buys us, in the same run
        ours = (peers.make_fit("kerasbert", shape, "float32", steps) if training
                else peers.make_predict("kerasbert", shape, "float32"))
        made.append((ours[0], {**ours[1], "library": "kerasbert float32"}))
    made = [side for side in made if side is not None]
    times = timing.alternate({info["library"]: call for call, info in made}, repeats)
    peaks = {side_dtype: timing.matmul_peak(side_dtype)
             for side_dtype in {info["dtype"] for _, info in made}}
    floor = None if training else timing.matmul_floor(shape, dtype)
    flops = shape.flops() * (3 if training else 1)
    results = {}
    for _, info in made:
        per_batch = timing.median(times[info["library"]]) / info.get("steps", 1)
        results[info["library"]] = {
            **info, "seconds_per_batch": per_batch, "all_seconds": times[info["library"]],
            "sequences_per_second": shape.batch / per_batch,
            "fraction_of_peak": flops / per_batch / peaks[info["dtype"]]}
        if floor is not None and info["dtype"] == dtype:
            results[info["library"]]["matmul_floor_share"] = floor / per_batch
    # Each round's peer time over our time in the same round, then the
    # median: a slow spell of the machine hits both halves of a pair.
    ratios = {f"kerasbert / {name}": timing.paired_ratio(times[name], times["kerasbert"])
              for name in results if name != "kerasbert"}
    return {"shape": shape.__dict__, "dtype": dtype, "mode": "training" if training else
            "inference", "peak_flops": peaks[dtype], "peaks": peaks,
            "matmul_floor_seconds": floor, "sides": results, "ratios": ratios}


def table(result):
    shape = result["shape"]
    lines = [f"{shape['name']} {result['mode']} {result['dtype']} (batch {shape['batch']} "
             f"x {shape['sequence']}; matmul peak {result['peak_flops'] / 1e9:.0f} GFLOP/s)",
             "| library | sequences/s | fraction of peak | matmul floor / time |",
             "|---|---|---|---|"]
    for name, side in result["sides"].items():
        floor = side.get("matmul_floor_share")
        lines.append(f"| {name} | {side['sequences_per_second']:.2f} | "
                     f"{side['fraction_of_peak']:.0%} | "
                     f"{'' if floor is None else f'{floor:.0%}'} |")
    lines += [f"{name}: {ratio:.2f}x" for name, ratio in result["ratios"].items()]
    return "\n".join(lines)


def main(argv, training=False):
    del argv
    shape = peers.QUICK if FLAGS.quick else peers.SHAPES[FLAGS.shape]
    result = measure(shape, FLAGS.dtype, FLAGS.repeats, training,
                     steps=FLAGS.steps if training else 1)
    print(table(result))
    write_results(result, FLAGS.output)


def define_flags(output):
    """The command-line flags of this module and of benchmarks.training."""
    flags.DEFINE_enum("shape", "bert_base", ["bert_base", "bert_tiny"],
                      "bert_base: batch 8 x 128; bert_tiny: batch 32 x 128.")
    flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype.")
    flags.DEFINE_integer("repeats", 5, "Timed rounds (each side once per round), at least 5.")
    flags.DEFINE_bool("quick", False, "A tiny shape: checks that the benchmark runs.")
    flags.DEFINE_string("output", os.path.join("benchmarks", "results", output),
                        "JSON results (its folder is created).")


FLAGS = flags.FLAGS

if __name__ == "__main__":
    define_flags("inference.json")
    app.run(main)
