"""How every suite times: alternating sides, medians, the matmul peak.

A noisy shared machine slows whatever runs while it is busy, so sides are
never timed one after another: each round times every side once, in turn,
and a side's figure is its median over the rounds (after untimed warm-up
calls that trace and compile). Figures are ratios between sides of the
same run, never absolute times.
"""

import time

import numpy as np

MIN_REPEATS = 5


def seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def alternate(calls, repeats, warmup=2):
    """{name: [seconds per round]} for {name: zero-argument call}."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats={repeats}: at least {MIN_REPEATS} (a median of fewer is "
                         "noise here).")
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(seconds(call))
    return times


def median(values):
    return float(np.median(values))


def paired_ratio(slower, faster):
    """Median over rounds of slower[i] / faster[i]: how many times faster
    `faster` ran, pair by pair (both timed in the same round)."""
    return float(np.median(np.asarray(slower) / np.asarray(faster)))


def matmul_peak(dtype, size=2048, repeats=5):
    """FLOP/s of the best square matmul in `dtype`, XLA-compiled or not,
    whichever is faster on this machine (both are what a model can reach)."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal([size, size]), dtype)
    best = 0.0
    for jit_compile in (True, False):
        product = tf.function(lambda x: tf.matmul(x, x), jit_compile=jit_compile)
        product(a).numpy()
        fastest = min(seconds(lambda: product(a).numpy()) for _ in range(repeats))
        best = max(best, 2 * size ** 3 / fastest)
    return best


def matmul_floor(shape, dtype, repeats=5):
    """Seconds for the encoder's matmuls alone, at the model's own shapes
    and with as many distinct weights (per layer: 4 [tokens, h] x [h, h]
    projections, [h, i] and [i, h] feed-forward, and the two batched
    attention products), XLA-compiled or not, whichever is faster: no
    implementation of these matmuls runs the forward pass faster. What a
    model spends beyond it is softmax, layer norms, GELU, masking,
    embeddings and data movement."""
    import tensorflow as tf

    tokens, h, i = shape.batch * shape.sequence, shape.hidden, shape.intermediate
    heads, size, s = shape.heads, shape.hidden // shape.heads, shape.sequence

    def weights(*dims):  # unit-variance outputs: no denormals, no overflow
        return tf.cast(tf.random.normal(dims, stddev=dims[-2] ** -0.5), dtype)

    x = tf.cast(tf.random.normal([tokens, h]), dtype)
    layers = [([weights(h, h) for _ in range(4)], weights(h, i), weights(i, h),
               weights(shape.batch * heads, s, size), weights(shape.batch * heads, s, s))
              for _ in range(shape.layers)]

    def matmuls():
        out = []
        for projections, w_i, w_o, q, p in layers:
            out += [tf.matmul(x, w) for w in projections]
            out += [tf.matmul(tf.matmul(x, w_i), w_o), tf.matmul(q, q, transpose_b=True),
                    tf.matmul(p, q)]
        return out

    best = float("inf")
    for jit_compile in (True, False):
        run = tf.function(matmuls, jit_compile=jit_compile)
        run()[0].numpy()
        best = min(best, min(seconds(lambda: run()[-1].numpy()) for _ in range(repeats)))
    return best
