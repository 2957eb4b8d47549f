"""Time to the first training step, from process start, in fresh processes.

    python -m benchmarks.first_step [--shape=bert_base] [--repeats=5] [--quick]

What a user waits for after launching a fine-tuning run: Python starting,
the library importing, the model being built, compiled, and one `fit` step
(tracing the train function and creating the optimizer's slots) finishing.
Each measurement is a new process (nothing cached in memory from a previous
one); kerasbert and keras-hub processes alternate. The parent times from
launching the process to reading the child's "done" line; the child also
reports its own phases (import, build, first step).
"""

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

LIBRARIES = ("kerasbert", "keras-hub")


def child(library, shape_name):
    """Runs in the fresh process: import, build, one fit step, report."""
    start = time.perf_counter()
    import keras  # noqa: F401  (both sides pay for it; timed as import)

    from benchmarks import peers

    if library == "kerasbert":
        import zoo  # noqa: F401
    else:
        import keras_hub  # noqa: F401
    imported = time.perf_counter()
    call, _ = peers.make_fit(library, peers.SHAPES[shape_name], steps=1)
    built = time.perf_counter()
    call()
    stepped = time.perf_counter()
    print("done " + json.dumps({"import": imported - start, "build": built - imported,
                                "first_step": stepped - built}), flush=True)


def launch(library, shape_name):
    """(seconds from launch to the end of the first step, child's phases)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.first_step", f"--child={library}",
         f"--shape={shape_name}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for line in process.stdout:
        if line.startswith("done "):
            elapsed = time.perf_counter() - start
            process.kill()
            process.wait()
            return elapsed, json.loads(line[5:])
    process.wait()
    raise RuntimeError(f"{library} first-step process failed:\n{process.stderr.read()[-3000:]}")


def measure(shape_name, repeats):
    from benchmarks import timing

    if repeats < timing.MIN_REPEATS:
        raise ValueError(f"repeats={repeats}: at least {timing.MIN_REPEATS}.")
    runs = {library: [] for library in LIBRARIES}
    for _ in range(repeats):
        for library in LIBRARIES:
            runs[library].append(launch(library, shape_name))
    sides = {}
    for library, measured in runs.items():
        phases = {name: timing.median([m[1][name] for m in measured])
                  for name in measured[0][1]}
        sides[library] = {"seconds": timing.median([m[0] for m in measured]),
                          "all_seconds": [m[0] for m in measured], "phases": phases}
    ratio = sides["kerasbert"]["seconds"] / sides["keras-hub"]["seconds"]
    return {"shape": shape_name, "sides": sides, "ratios": {"kerasbert / keras-hub": ratio}}


def table(result):
    lines = [f"time to first training step, {result['shape']} (fresh process each)",
             "| library | seconds | import | build | first fit step |", "|---|---|---|---|---|"]
    for name, side in result["sides"].items():
        phases = side["phases"]
        lines.append(f"| {name} | {side['seconds']:.1f} | {phases['import']:.1f} | "
                     f"{phases['build']:.1f} | {phases['first_step']:.1f} |")
    lines += [f"{name}: {ratio:.2f}x" for name, ratio in result["ratios"].items()]
    return "\n".join(lines)


def main(argv):
    from benchmarks import write_results

    del argv
    if FLAGS.child:
        child(FLAGS.child, FLAGS.shape)
        return
    result = measure("test_tiny" if FLAGS.quick else FLAGS.shape, FLAGS.repeats)
    print(table(result))
    write_results(result, FLAGS.output)


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("shape", "bert_base", "Shape name from benchmarks.peers.SHAPES.")
    flags.DEFINE_integer("repeats", 5, "Processes per library (alternating), at least 5.")
    flags.DEFINE_bool("quick", False, "A tiny shape: checks that the benchmark runs.")
    flags.DEFINE_enum("child", None, LIBRARIES, "Internal: run one measurement and exit.")
    flags.DEFINE_string("output", None, "Also write the results to this JSON file.")
    FLAGS = flags.FLAGS
    app.run(main)
