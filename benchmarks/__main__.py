"""The benchmark suite: every performance figure (docs/performance.md), its target, pass or short.

    python -m benchmarks [--suite=all|inference|training|first_step|bucketing|export|tokenization|
                          serving]
        [--quick] [--output_dir=benchmarks/results]

Each measurement runs in its own fresh process (`python -m benchmarks.<x>`,
writing JSON to --output_dir), so one library's memory or thread pools never
slow the next measurement. Every figure is a ratio between sides timed in
the same process, alternating, median of at least 5 rounds after warm-up
(`benchmarks.timing`). Then the table: figure, value, target, mark, written
to --output_dir/summary.json and summary.md. --quick runs tiny shapes to
check the machinery (its figures mean nothing).
"""

import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import time

from absl import app, flags

SUITES = ("inference", "training", "first_step", "bucketing", "export", "tokenization", "serving")
flags.DEFINE_enum("suite", "all", ("all",) + SUITES, "Which measurements to run.")
flags.DEFINE_bool("quick", False, "Tiny shapes and passes: checks that everything runs.")
flags.DEFINE_string("output_dir", os.path.join("benchmarks", "results"), "Where the JSON goes.")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Job:
    """One measuring process: `python -m benchmarks.<module> <args> --output=<name>.json`."""

    suite: str
    name: str
    module: str
    args: tuple
    quick_args: tuple


def _shape_jobs(suite, module, extra=(), quick_extra=()):
    return [Job(suite, f"{suite}_{shape}_{dtype}", module,
                (f"--shape={shape}", f"--dtype={dtype}") + tuple(extra),
                ("--quick", f"--dtype={dtype}") + tuple(quick_extra))
            for shape in ("bert_base", "bert_tiny") for dtype in ("float32", "bfloat16")]


_QUICK_BUCKETING = ("--model=bert_test_tiny", "--steps=64", "--window=64", "--batch_size=8",
                    "--vocab_size=200")

JOBS = (
    _shape_jobs("inference", "inference")
    # Training steps are long and the machine has slow spells: 7 rounds.
    # bert_tiny's steps are short: 8 per fit call amortize fit's own cost alike.
    + [dataclasses.replace(job, args=job.args + ("--repeats=7",) + (
        ("--steps=8",) if "tiny" in job.name else ()))
       for job in _shape_jobs("training", "training")]
    + [Job("first_step", "first_step_bert_base", "first_step", ("--shape=bert_base",),
           ("--quick",)),
       # Bucketing with XLA, as docs/tasks.md describes it (a few shapes, each
       # compiled once); both sides compiled alike.
       Job("bucketing", "bucketing_bert_tiny", "bucketing",
           ("--model=bert_tiny_uncased", "--jit_compile"), _QUICK_BUCKETING),
       Job("export", "export_bert_tiny", "export", ("--shape=bert_tiny",), ("--quick",)),
       Job("tokenization", "tokenization", "tokenization", (), ("--lines=2000",)),
       Job("serving", "serving_bert_base", "serving", ("--shape=bert_base",), ("--quick",)),
       Job("serving", "int8_accuracy", "int8_accuracy", (), ("--quick",))]
)


@dataclasses.dataclass(frozen=True)
class Row:
    """A figure read from one job's JSON, with its target."""

    figure: str
    job: str
    read: object  # result dict -> value, or None when the peer is missing
    target: float = None
    at_most: bool = False  # the target is a ceiling, not a floor

    def mark(self, value):
        if self.target is None or value is None:
            return ""
        passed = value <= self.target if self.at_most else value >= self.target
        return "pass" if passed else "short"


def _ratio(name):
    return lambda result: result["ratios"].get(name)


def _peak_fraction(side):
    return lambda result: result["sides"][side]["fraction_of_peak"]


def _size(name):
    return lambda result: result["sizes"][name]


def _change(name):
    """|int8 - float32| of a held-out metric, in points."""
    return lambda result: abs(result["changes"][name])


ROWS = (
    Row("BERT-base fp32 inference (predict), kerasbert / keras-hub",
        "inference_bert_base_float32", _ratio("kerasbert / keras-hub"), 1.25),
    Row("BERT-base fp32 inference (predict), kerasbert's fraction of the fp32 matmul peak",
        "inference_bert_base_float32", _peak_fraction("kerasbert"), 0.85),
    Row("BERT-base fp32 inference, kerasbert / Hugging Face (torch eager)",
        "inference_bert_base_float32", _ratio("kerasbert / hugging-face")),
    Row("BERT-base bf16 inference, kerasbert / Hugging Face bf16 autocast",
        "inference_bert_base_bfloat16", _ratio("kerasbert / hugging-face"), 1.1),
    Row("BERT-base bf16 inference, kerasbert / keras-hub bf16",
        "inference_bert_base_bfloat16", _ratio("kerasbert / keras-hub")),
    Row("BERT-base bf16 inference, kerasbert bf16 / kerasbert fp32",
        "inference_bert_base_bfloat16", _ratio("kerasbert / kerasbert float32")),
    Row("BERT-base fp32 training step (fit), kerasbert / keras-hub",
        "training_bert_base_float32", _ratio("kerasbert / keras-hub"), 1.15),
    Row("BERT-base fp32 training step, kerasbert / PyTorch eager",
        "training_bert_base_float32", _ratio("kerasbert / hugging-face")),
    Row("BERT-base bf16 training step, kerasbert bf16 / kerasbert fp32",
        "training_bert_base_bfloat16", _ratio("kerasbert / kerasbert float32"), 1.4),
    Row("BERT-base bf16 training step, kerasbert / keras-hub bf16",
        "training_bert_base_bfloat16", _ratio("kerasbert / keras-hub")),
    Row("bert_tiny fp32 inference (predict), kerasbert / keras-hub",
        "inference_bert_tiny_float32", _ratio("kerasbert / keras-hub"), 2.5),
    Row("bert_tiny fp32 inference, kerasbert / Hugging Face",
        "inference_bert_tiny_float32", _ratio("kerasbert / hugging-face")),
    Row("bert_tiny bf16 inference, kerasbert / keras-hub bf16",
        "inference_bert_tiny_bfloat16", _ratio("kerasbert / keras-hub")),
    Row("bert_tiny fp32 training (fit), kerasbert / keras-hub",
        "training_bert_tiny_float32", _ratio("kerasbert / keras-hub")),
    Row("bert_tiny bf16 training (fit), kerasbert / keras-hub bf16",
        "training_bert_tiny_bfloat16", _ratio("kerasbert / keras-hub")),
    Row("BERT-base time to first training step, kerasbert / keras-hub",
        "first_step_bert_base", _ratio("kerasbert / keras-hub"), 0.5, at_most=True),
    Row("fine-tuning tokens/s on the length mix, bucketed / padded to 128 (bert_tiny)",
        "bucketing_bert_tiny", _ratio("bucketed / padded"), 3.0),
    Row("exported SavedModel, raw-text / ids signature throughput, batch 32 (bert_tiny)",
        "export_bert_tiny", _ratio("raw_text / ids throughput"), 0.9),
    Row("tokenization to packed inputs in tf.data, kerasbert / HF tokenizers",
        "tokenization", _ratio("kerasbert / hf-tokenizers"), 1.0),
    Row("BERT-base classifier serving, kerasbert fp32 SavedModel / ONNX Runtime fp32",
        "serving_bert_base", _ratio("kerasbert fp32 / ort fp32"), 1.0),
    Row("BERT-base classifier serving, kerasbert int8 / kerasbert fp32 SavedModel",
        "serving_bert_base", _ratio("kerasbert int8 / kerasbert fp32"), 2.5),
    Row("BERT-base classifier serving, kerasbert int8 / ONNX Runtime dynamic int8",
        "serving_bert_base", _ratio("kerasbert int8 / ort int8"), 1.0),
    Row("BERT-base classifier serving, Keras' own quantize(\"int8\") / kerasbert fp32",
        "serving_bert_base", _ratio("keras int8 / kerasbert fp32")),
    Row("BERT-base int8 export size / fp32 (variables/)",
        "serving_bert_base", _size("kerasbert int8 / fp32 variables"), 0.3, at_most=True),
    Row("int8 export, held-out classifier accuracy change (points)",
        "int8_accuracy", _change("classifier accuracy"), 1.0, at_most=True),
    Row("int8 export, held-out QA F1 change (points)",
        "int8_accuracy", _change("QA f1"), 1.0, at_most=True),
)


def run_job(job, quick, output_dir):
    output = os.path.join(output_dir, f"{job.name}.json")
    command = [sys.executable, "-m", f"benchmarks.{job.module}",
               *(job.quick_args if quick else job.args), f"--output={output}"]
    print("+ " + " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{job.name} failed:\n{done.stderr[-4000:]}")
    print(done.stdout.rstrip(), f"\n({time.perf_counter() - start:.0f} s)\n", flush=True)
    with open(output) as file:
        return json.load(file)


def summarize(results):
    rows = []
    for row in ROWS:
        if row.job not in results:
            continue
        value = row.read(results[row.job])
        target = None if row.target is None else (
            f"<= {row.target:g}" if row.at_most else f">= {row.target:g}")
        rows.append({"figure": row.figure, "value": value, "target": target,
                     "mark": row.mark(value) if value is not None else "peer not installed"})
    return rows


def markdown(rows, machine):
    lines = [f"Measured {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
             f"`python -m benchmarks --suite=all` ({machine['minutes']:.0f} min).", "",
             "| figure | value | target | |", "|---|---|---|---|"]
    for row in rows:
        value = "n/a" if row["value"] is None else (
            f"{row['value']:.1%}" if "fraction" in row["figure"] else
            f"{row['value']:.1f}" if "(points)" in row["figure"] else f"{row['value']:.3f}x")
        lines.append(f"| {row['figure']} | {value} | {row['target'] or ''} | {row['mark']} |")
    return "\n".join(lines)


def _cpu():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv):
    del argv
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    start = time.perf_counter()
    jobs = [job for job in JOBS if FLAGS.suite in ("all", job.suite)]
    results = {job.name: run_job(job, FLAGS.quick, FLAGS.output_dir) for job in jobs}
    machine = {"date": datetime.date.today().isoformat(), "cores": os.cpu_count(),
               "cpu": _cpu(), "quick": FLAGS.quick,
               "minutes": (time.perf_counter() - start) / 60}
    rows = summarize(results)
    table = markdown(rows, machine)
    print(table)
    with open(os.path.join(FLAGS.output_dir, "summary.json"), "w") as file:
        json.dump({"machine": machine, "rows": rows}, file, indent=2)
    with open(os.path.join(FLAGS.output_dir, "summary.md"), "w") as file:
        file.write(table + "\n")


if __name__ == "__main__":
    app.run(main)
