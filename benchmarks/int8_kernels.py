"""TensorFlow's CPU int8 matmul kernels on one BERT-base feed-forward matmul.

    python -m benchmarks.int8_kernels [--repeats=7] [--quick]
        [--output=benchmarks/results/int8_kernels.json]

Why `export.quantize` calls oneDNN's `_QuantizedMatMul`: every int8 path
TensorFlow 2.21 offers on a CPU, timed on the same [1024, 768] x [768, 3072]
product (batch 8 x 128 tokens into BERT-base's intermediate layer), against
the float32 matmul, in the same process, alternating, median of --repeats
rounds (`benchmarks.timing`). Each int8 side includes what it needs at run
time besides the product (quantizing the float32 activations to int8, the
int32 -> float32 rescaling), as a served model runs it:

- fp32: tf.matmul (oneDNN);
- tf.matmul int8 -> int32: what Keras' int8 Dense layers call (BatchMatMulV3);
- XLA int8 dot: the same under tf.function(jit_compile=True);
- QuantizedMatMul: the old gemmlowp kernel (quint8 x quint8);
- QuantizedMatMulWithBiasAndDequantize: oneDNN, one weight scale per tensor
  (its public kernel is a placeholder that oneDNN's graph rewrite replaces);
- _QuantizedMatMul: oneDNN, one scale per output channel, int8 x int8 with
  VNNI (`export.quantize.int8_matmul`, per-token activation scales).

UniformQuantizedDot and UniformQuantizedDotHybrid are reference kernels
(seconds per call); they are timed once, outside the alternation. The
figure is the float32 time over each side's time: above 1, faster.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import timing, write_results  # noqa: E402

SHAPE = (1024, 768, 3072)
QUICK_SHAPE = (64, 32, 48)


def sides(rows, depth, units):
    import tensorflow as tf

    from export.quantize import int8_matmul

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((rows, depth)), tf.float32)
    weights = rng.standard_normal((depth, units)) * depth ** -0.5
    w = tf.constant(weights, tf.float32)
    scale = 127.0 / np.abs(weights).max(axis=0)  # per output channel, as Keras
    w8 = tf.constant(np.round(weights * scale), tf.int8)
    scale = tf.constant(scale, tf.float32)
    w_range = float(np.abs(weights).max())
    wq8 = tf.constant(np.round(weights * 127 / w_range), tf.int8)

    def to_int8(values):  # per-tensor symmetric, for the kernels that take one scale
        top = tf.reduce_max(tf.abs(values))
        return tf.cast(tf.round(values * (127.0 / top)), tf.int8), top

    def keras_int8():
        q, top = to_int8(x)
        product = tf.matmul(q, w8, output_type=tf.int32)
        return tf.cast(product, tf.float32) * (top / 127.0) / scale

    def gemmlowp():
        q, top = to_int8(x)
        a = tf.bitcast(tf.cast(tf.cast(q, tf.int32) + 128, tf.uint8), tf.quint8)
        b = tf.bitcast(tf.cast(tf.cast(wq8, tf.int32) + 128, tf.uint8), tf.quint8)
        product, _, _ = tf.raw_ops.QuantizedMatMul(
            a=a, b=b, min_a=-top, max_a=top, min_b=-w_range, max_b=w_range,
            Toutput=tf.qint32)
        return tf.cast(tf.bitcast(product, tf.int32), tf.float32)

    def onednn_per_tensor():
        top = tf.reduce_max(tf.abs(x))
        # MIN_FIRST: uint8 activations from [-top, top].
        a = tf.bitcast(tf.cast(tf.round((x + top) * (127.5 / top)), tf.uint8), tf.quint8)
        return tf.raw_ops.QuantizedMatMulWithBiasAndDequantize(
            a=a, b=tf.bitcast(wq8, tf.qint8), bias=tf.zeros([units]), min_a=-top, max_a=top,
            min_b=-w_range, max_b=w_range, min_freezed_output=-1.0, max_freezed_output=1.0,
            Toutput=tf.float32, input_quant_mode="MIN_FIRST")

    functions = {
        "fp32": (lambda: tf.matmul(x, w), False),
        "tf.matmul int8 -> int32": (keras_int8, False),
        "XLA int8 dot": (keras_int8, True),
        "QuantizedMatMul (gemmlowp)": (gemmlowp, False),
        "QuantizedMatMulWithBiasAndDequantize (oneDNN, per tensor)": (onednn_per_tensor, False),
        "_QuantizedMatMul (oneDNN, per channel)": (lambda: int8_matmul(x, w8, scale), False),
    }
    int32_range = dict(output_quantization_min_val=-2 ** 31,
                       output_quantization_max_val=2 ** 31 - 1)
    reference = {
        "UniformQuantizedDot": lambda: tf.raw_ops.UniformQuantizedDot(
            lhs=tf.bitcast(to_int8(x)[0], tf.qint8), rhs=tf.bitcast(w8, tf.qint8),
            lhs_scales=1.0, lhs_zero_points=0, rhs_scales=1.0 / scale,
            rhs_zero_points=tf.zeros([units], tf.int32), output_scales=1.0 / scale,
            output_zero_points=tf.zeros([units], tf.int32), Tout=tf.qint32,
            rhs_quantization_axis=1, output_quantization_axis=1,
            lhs_quantization_min_val=-127, lhs_quantization_max_val=127,
            rhs_quantization_min_val=-127, rhs_quantization_max_val=127, **int32_range),
        "UniformQuantizedDotHybrid": lambda: tf.raw_ops.UniformQuantizedDotHybrid(
            lhs=x, rhs=tf.bitcast(w8, tf.qint8), rhs_scales=1.0 / scale,
            rhs_zero_points=tf.zeros([units], tf.int32), Tout=tf.float32,
            rhs_quantization_axis=1, rhs_quantization_min_val=-127,
            rhs_quantization_max_val=127),
    }
    calls = {}
    for name, (function, jit) in {**functions, **{name: (function, False) for name, function
                                                  in reference.items()}}.items():
        compiled = tf.function(function, jit_compile=jit)
        calls[name] = lambda compiled=compiled: compiled().numpy()
    return calls, list(reference)


def measure(shape, repeats):
    rows, depth, units = shape
    calls, reference = sides(rows, depth, units)
    timed = {name: call for name, call in calls.items() if name not in reference}
    times = timing.alternate(timed, repeats)
    results = {name: {"seconds": timing.median(values), "all_seconds": values,
                      "fp32 / this": timing.paired_ratio(times["fp32"], values)}
               for name, values in times.items()}
    for name in reference:
        calls[name]()  # trace and warm up
        start = time.perf_counter()
        calls[name]()
        seconds = time.perf_counter() - start
        results[name] = {"seconds": seconds, "fp32 / this": results["fp32"]["seconds"] / seconds,
                         "timed_once": True}
    return {"shape": list(shape), "sides": results}


def table(result):
    rows, depth, units = result["shape"]
    lines = [f"[{rows}, {depth}] x [{depth}, {units}] matmul", "| kernel | ms | fp32 / this |",
             "|---|---|---|"]
    for name, side in result["sides"].items():
        lines.append(f"| {name} | {1000 * side['seconds']:.1f} | {side['fp32 / this']:.2f}x |")
    return "\n".join(lines)


def main(argv):
    del argv
    result = measure(QUICK_SHAPE if FLAGS.quick else SHAPE, FLAGS.repeats)
    print(table(result))
    write_results(result, FLAGS.output)


if __name__ == "__main__":
    flags.DEFINE_integer("repeats", 7, "Timed rounds, at least 5.")
    flags.DEFINE_bool("quick", False, "A tiny shape: checks that the benchmark runs.")
    flags.DEFINE_string("output", os.path.join("benchmarks", "results", "int8_kernels.json"),
                        "JSON results (its folder is created).")
    FLAGS = flags.FLAGS
    app.run(main)
