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
