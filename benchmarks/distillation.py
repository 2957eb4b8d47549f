"""Inference speed-up of distilled students over their teacher.

    python -m benchmarks.distillation [--teacher=bert_base_uncased]
        [--students=distilbert_base_uncased,tinybert_6l_768d,tinybert_4l_312d]
        [--batch_size=8] [--sequence_length=128] [--repeats=10] [--calls=3]
        [--warmup=3] [--[no]jit_compile] [--quick]
        [--output=benchmarks/results/distillation.json]

Claim checked: a student with fewer layers infers faster than its teacher by
at least (teacher layers / student layers) x 0.7 (the 0.7 leaves room for
the embeddings and per-call overheads that do not shrink with depth; a
narrower student, like tinybert_4l_312d, should clear it by far).

Every model is a randomly initialised zoo backbone (weights do not change
the cost of a forward pass), called in inference mode through a
`tf.function(jit_compile=True)` (XLA; --nojit_compile for plain graphs) on
the same fixed batch of random token ids (full-length, no padding, segment
ids 0), on the same cores. Each model is compiled, then warmed up with
--warmup calls before timing. Timing alternates the sides: each round times
the teacher, then the first student, the teacher, the second student, and
so on, each timing --calls forward calls in a row (a call returns when its
outputs are computed: eager CPU execution is synchronous, and the last
call's sequence_output is read back inside the timed region). Each student's
speed-up is the median over --repeats rounds of the paired per-call ratio
(the teacher timing right before it / the student timing), so slow drifts
of a shared machine cancel; median per-call times are printed too. Compare
ratios, not absolute numbers. --quick (batch 2, length 32, 5 rounds of one
call) only checks that the benchmark runs.
"""

import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import write_results  # noqa: E402

import zoo  # noqa: E402

flags.DEFINE_string("teacher", "bert_base_uncased", "Teacher zoo preset (randomly initialised).")
flags.DEFINE_list("students", ["distilbert_base_uncased", "tinybert_6l_768d", "tinybert_4l_312d"],
                  "Student zoo presets (randomly initialised).")
flags.DEFINE_integer("batch_size", 8, "Sequences per forward call.")
flags.DEFINE_integer("sequence_length", 128, "Tokens per sequence (no padding).")
flags.DEFINE_integer("repeats", 10, "Timed rounds (teacher, student, ... alternating); the "
                     "median paired ratio is reported.", lower_bound=5)
flags.DEFINE_integer("calls", 3, "Forward calls per timing.", lower_bound=1)
flags.DEFINE_integer("warmup", 3, "Untimed calls per model after compiling.", lower_bound=0)
flags.DEFINE_bool("jit_compile", True, "XLA-compile each model's forward pass.")
flags.DEFINE_float("factor", 0.7, "Target speed-up = (teacher layers / student layers) x factor.")
flags.DEFINE_bool("quick", False, "Smoke run: batch 2, length 32, 5 rounds of 1 call (flags "
                  "given explicitly win).")
flags.DEFINE_string("output", "benchmarks/results/distillation.json", "JSON results file "
                    "(its folder is created).")
flags.DEFINE_integer("seed", 0, "Token ids and weights seed.")
FLAGS = flags.FLAGS

QUICK = {"batch_size": 2, "sequence_length": 32, "repeats": 5, "calls": 1, "warmup": 1}


def apply_quick():
    for name, value in QUICK.items():
        if not FLAGS[name].present:
            FLAGS[name].value = value


def make_inputs(rng):
    shape = (FLAGS.batch_size, FLAGS.sequence_length)
    ids = rng.integers(1000, 20000, shape)  # ordinary word pieces, no specials
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    return {"input_word_ids": tf.constant(ids, tf.int32),
            "input_mask": tf.ones(shape, tf.int32),
            "input_type_ids": tf.zeros(shape, tf.int32)}


def make_forward(name, inputs):
    """A compiled, warmed-up zero-argument forward pass of preset `name`."""
    preset = zoo.get_preset(name)
    backbone = zoo.build(name, max_sequence_length=max(512, FLAGS.sequence_length))
    function = tf.function(lambda x: backbone(x, training=False), jit_compile=FLAGS.jit_compile)
    start = time.perf_counter()
    function(inputs)["sequence_output"].numpy()  # trace (and compile)
    compile_seconds = time.perf_counter() - start
    for _ in range(FLAGS.warmup):
        function(inputs)["sequence_output"].numpy()

    def forward():
        for _ in range(FLAGS.calls):
            outputs = function(inputs)
        outputs["sequence_output"].numpy()

    info = {"preset": name, "layers": preset.arguments["num_layers"],
            "hidden_size": preset.arguments["hidden_size"],
            "parameters": backbone.count_params(), "compile_seconds": compile_seconds}
    return forward, info


def per_call(forward):
    start = time.perf_counter()
    forward()
    return (time.perf_counter() - start) / FLAGS.calls


def main(argv):
    del argv
    if FLAGS.quick:
        apply_quick()
    keras.utils.set_random_seed(FLAGS.seed)
    inputs = make_inputs(np.random.default_rng(FLAGS.seed))
    began = time.perf_counter()
    teacher, teacher_info = make_forward(FLAGS.teacher, inputs)
    students = {name: make_forward(name, inputs) for name in FLAGS.students}

    # Rounds alternate: teacher, student 1, teacher, student 2, ... so each
    # student is paired with the teacher timing just before it.
    teacher_times = {name: [] for name in students}
    student_times = {name: [] for name in students}
    for _ in range(FLAGS.repeats):
        for name, (forward, _) in students.items():
            teacher_times[name].append(per_call(teacher))
            student_times[name].append(per_call(forward))

    rows = []
    for name, (_, info) in students.items():
        paired = np.array(teacher_times[name]) / np.array(student_times[name])
        layer_ratio = teacher_info["layers"] / info["layers"]
        speedup = float(np.median(paired))
        rows.append({
            "student": name, "layers": info["layers"], "hidden_size": info["hidden_size"],
            "parameters": info["parameters"],
            "teacher_ms": 1000 * float(np.median(teacher_times[name])),
            "student_ms": 1000 * float(np.median(student_times[name])),
            "speedup": speedup, "speedup_per_round": [float(r) for r in paired],
            "layer_ratio": layer_ratio, "target": layer_ratio * FLAGS.factor,
            "passed": bool(math.isfinite(speedup) and speedup >= layer_ratio * FLAGS.factor),
        })
    seconds = time.perf_counter() - began

    all_teacher = [t for times in teacher_times.values() for t in times]
    print(f"teacher: {FLAGS.teacher} ({teacher_info['layers']} layers, "
          f"H{teacher_info['hidden_size']}, {teacher_info['parameters']:,} parameters), "
          f"cores: {os.cpu_count()}, batch: {FLAGS.batch_size}, "
          f"sequence_length: {FLAGS.sequence_length}, "
          f"rounds: {FLAGS.repeats} x {FLAGS.calls} calls, warmup: {FLAGS.warmup}, "
          f"jit_compile: {FLAGS.jit_compile}, "
          f"teacher per call (median): {1000 * np.median(all_teacher):.1f} ms")
    print()
    print("| student | layers | hidden | parameters | teacher ms/call | student ms/call "
          "| speed-up (median) | per-round range | layer ratio | target | result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['student']} | {row['layers']} | {row['hidden_size']} | "
              f"{row['parameters']:,} | {row['teacher_ms']:.1f} | {row['student_ms']:.1f} | "
              f"{row['speedup']:.2f}x | {min(row['speedup_per_round']):.2f}-"
              f"{max(row['speedup_per_round']):.2f} | {row['layer_ratio']:.2f} | "
              f"{row['target']:.2f}x | {'pass' if row['passed'] else 'short'} |")
    print()
    print(f"speed-up = median over rounds of (teacher time / student time) per call; target = "
          f"layer ratio x {FLAGS.factor}. Total {seconds:.0f} s.")

    result = {
        "teacher": {k: v for k, v in teacher_info.items() if k != "preset"} | {
            "preset": FLAGS.teacher, "ms_per_call": 1000 * float(np.median(all_teacher))},
        "config": {"batch_size": FLAGS.batch_size, "sequence_length": FLAGS.sequence_length,
                   "repeats": FLAGS.repeats, "calls": FLAGS.calls, "warmup": FLAGS.warmup,
                   "jit_compile": FLAGS.jit_compile, "factor": FLAGS.factor,
                   "quick": FLAGS.quick, "seed": FLAGS.seed, "cores": os.cpu_count(),
                   "tensorflow": tf.__version__, "keras": keras.__version__},
        "rows": rows, "all_passed": all(row["passed"] for row in rows), "seconds": seconds,
    }
    write_results(result, FLAGS.output)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
