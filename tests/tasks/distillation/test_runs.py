"""The three distillation tasks through the runner: teachers from every
source, the student afterwards, resume, frozen teacher, flags and errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from kerasbert.text import build_wordpiece_vocabulary
from tasks.training import runner
from tasks.base import TaskConfig
from tasks.distillation import models
from tasks.distillation.distilbert import DistilBertDistillationTask
from tasks.pretraining import grammar_documents
from tests.tasks.interruption import interrupted_copy

QUICK = dict(sequence_length=32, batch_size=8, eval_batch_size=32, train_steps=4,
             steps_per_loop=2, learning_rate=1e-3)
MLM_OPTIONS = {"max_predictions": 5}


@pytest.fixture(scope="module")
def hf_masked_lm(tmp_path_factory):
    """A random 4-layer BertForMaskedLM saved by transformers, with its tokenizer."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf_mlm")
    texts = [sentence for document in grammar_documents(100, 0) for sentence in document]
    build_wordpiece_vocabulary(texts, 200, lower_case=True,
                               output_file=str(folder / "vocab.txt"))
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    vocab_size = sum(1 for _ in open(folder / "vocab.txt"))
    config = transformers.BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=4,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=64)
    transformers.BertForMaskedLM(config).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def classification_teacher(tmp_path_factory):
    """model.keras of a (briefly) fine-tuned classifier: BERT test-tiny, 2 layers."""
    folder = tmp_path_factory.mktemp("classifier")
    runner.run(runner.RunSettings(task="classification", model="bert_test_tiny",
                                  vocab_size=300, model_dir=str(folder), **QUICK))
    return str(folder / "model.keras")


def run(tmp_path, name, **settings):
    return runner.run(runner.RunSettings(model_dir=str(tmp_path / name), **{**QUICK, **settings}))


@pytest.mark.heavy
def test_distilbert_from_a_hugging_face_masked_lm(tmp_path, hf_masked_lm):
    result = run(tmp_path, "distilled", task="distill_distilbert", teacher=hf_masked_lm,
                 options={**MLM_OPTIONS, "student_layers": [0, 3]})
    assert result["step"] == 4
    assert {"mlm_accuracy", "perplexity", "teacher_mlm_accuracy", "retention"} <= set(
        result["final"])
    # The student: a DistilBERT of the two copied layers, reloadable with its
    # tokenizer (the teacher's) from model_dir alone.
    saved = str(tmp_path / "distilled" / "model.keras")
    student = zoo.load(saved)
    assert isinstance(student, zoo.DistilBertBackbone)
    assert (student.num_layers, student.hidden_size) == (2, 32)
    assert sorted(keras.saving.load_model(saved).output) == ["mlm_logits"]
    texts = ["the cat eats fish", "the dog barks"]
    ids = zoo.load_preprocessor(saved, sequence_length=16)(texts)["input_word_ids"]
    np.testing.assert_array_equal(
        ids, zoo.load_preprocessor(hf_masked_lm, sequence_length=16)(texts)["input_word_ids"])


def test_distilbert_teacher_view_and_student_head(hf_masked_lm):
    task = DistilBertDistillationTask(TaskConfig(sequence_length=16, options=MLM_OPTIONS))
    student_backbone = task.prepare(hf_masked_lm)
    distiller = task.build_model(student_backbone)
    # The teacher's MLM logits at the masked positions are the checkpoint's.
    heads = zoo.load(hf_masked_lm, with_head=True)
    features = {"input_word_ids": np.array([[2, 7, 9, 11, 3, 0]], np.int32),
                "input_mask": np.array([[1, 1, 1, 1, 1, 0]], np.int32),
                "input_type_ids": np.zeros((1, 6), np.int32),
                "masked_lm_positions": np.array([[2, 4]], np.int32)}
    outputs = distiller(features)
    full = heads({k: v for k, v in features.items() if k != "masked_lm_positions"})
    np.testing.assert_allclose(outputs["teacher"]["task"]["mlm_logits"][0],
                               np.asarray(full["mlm_logits"])[0, [2, 4]], atol=1e-5)
    # The student's MLM head starts as a copy of the teacher's.
    for a, b in zip(task.student_model.get_layer("mlm_head").get_weights(),
                    heads.get_layer("mlm_head").get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.heavy
def test_teacher_is_frozen_and_in_inference_mode(hf_masked_lm):
    task = DistilBertDistillationTask(TaskConfig(sequence_length=16, options=MLM_OPTIONS))
    distiller = task.build_model(task.prepare(hf_masked_lm))
    preprocessor = zoo.load_preprocessor(hf_masked_lm, sequence_length=16)
    batch = next(iter(task.build_dataset("train", preprocessor, 4, training=True)))
    first, second = distiller(batch[0], training=True), distiller(batch[0], training=True)
    # Teacher: no dropout even in a training call; student: dropout on.
    np.testing.assert_array_equal(first["teacher"]["task"]["mlm_logits"],
                                  second["teacher"]["task"]["mlm_logits"])
    assert not np.allclose(first["student"]["task"]["mlm_logits"],
                           second["student"]["task"]["mlm_logits"])
    assert distiller.trainable_weights and all(
        any(w is s for s in distiller.student.weights) for w in distiller.trainable_weights)
    teacher_before = [w.numpy().copy() for w in distiller.teacher.weights]
    student_before = [w.numpy().copy() for w in distiller.student.trainable_weights]
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    distiller.fit(task.build_dataset("train", preprocessor, 4, training=True), steps_per_epoch=2,
                  verbose=0)
    for before, weight in zip(teacher_before, distiller.teacher.weights):
        np.testing.assert_array_equal(before, weight.numpy())
    changed = [not np.array_equal(b, w.numpy())
               for b, w in zip(student_before, distiller.student.trainable_weights)]
    assert sum(changed) > 0.9 * len(changed)


@pytest.mark.heavy
def test_distilbert_from_a_pretraining_run(tmp_path):
    run(tmp_path, "teacher", task="pretraining", model="bert_test_tiny", vocab_size=200,
        options=MLM_OPTIONS)
    teacher = str(tmp_path / "teacher" / "model.keras")
    result = run(tmp_path, "distilled", task="distill_distilbert", teacher=teacher,
                 options=MLM_OPTIONS)
    assert result["final"]["teacher_mlm_accuracy"] >= 0
    student = zoo.load(str(tmp_path / "distilled" / "model.keras"))
    assert isinstance(student, zoo.DistilBertBackbone) and student.num_layers == 1


@pytest.mark.heavy
def test_tinybert_general_then_task_then_fine_tuning(tmp_path, classification_teacher):
    general = run(tmp_path, "general", task="distill_tinybert_general",
                  teacher=classification_teacher, student="tinybert_test_tiny",
                  options=MLM_OPTIONS)
    assert general["best"]["value"] == min(general["best"]["value"],
                                           general["final"]["distillation_loss"])
    general_path = str(tmp_path / "general" / "model.keras")
    general_student = zoo.load(general_path)
    assert isinstance(general_student, zoo.TinyBertBackbone)
    assert general_student.teacher_hidden_size == 16  # bert_test_tiny's width
    assert "fit_dense_outputs" in general_student.output

    task_run = run(tmp_path, "task", task="distill_tinybert_task",
                   teacher=classification_teacher, student=general_path,
                   export_dir=str(tmp_path / "exports" / "student"))
    assert {"accuracy", "teacher_accuracy", "retention"} <= set(task_run["final"])
    task_path = str(tmp_path / "task" / "model.keras")
    assert sorted(keras.saving.load_model(task_path).output) == ["logits"]
    # The student exports like any classifier: raw text in, labels out.
    served = tf.saved_model.load(task_run["export"]).signatures["serving_default"](
        text=tf.constant(["a fine film", ""]))
    assert served["label_name"].shape == (2,) and served["probabilities"].shape[0] == 2

    # The distilled student fine-tunes like any checkpoint.
    tuned = run(tmp_path, "tuned", task="classification", init_checkpoint=task_path)
    assert tuned["step"] == 4
    assert isinstance(zoo.load(str(tmp_path / "tuned" / "model.keras")), zoo.TinyBertBackbone)


def test_task_distillation_starts_from_the_general_student(tmp_path, classification_teacher):
    from tasks.distillation.tinybert import load_student

    general = zoo.build("tinybert_test_tiny", vocab_size=zoo.load(
        classification_teacher).vocab_size, teacher_hidden_size=16)
    general.save(tmp_path / "general.keras")
    teacher_backbone = models.with_internals(zoo.load(classification_teacher))
    student = load_student(str(tmp_path / "general.keras"), teacher_backbone, {})
    assert student.return_attention_scores and student.output_embeddings
    for a, b in zip(student.get_weights(), general.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.heavy
def test_mixed_precision_and_mirrored_strategy(tmp_path, classification_teacher):
    result = run(tmp_path, "bf16", task="distill_tinybert_task", teacher=classification_teacher,
                 student="tinybert_test_tiny", mixed_precision="bfloat16", strategy="mirrored",
                 jit_compile=True)
    assert result["step"] == 4 and np.isfinite(result["final"]["accuracy"])
    keras.config.set_dtype_policy("float32")


@pytest.mark.heavy
def test_an_interrupted_distillation_resumes_exactly(tmp_path, hf_masked_lm):
    # The checkpoint holds the student, the optimizer and the dropout random
    # streams, and the data (and its masks) pick up at the step where they
    # stopped: the resumed run ends exactly where the uninterrupted one did.
    settings = dict(task="distill_distilbert", teacher=hf_masked_lm, options=MLM_OPTIONS)
    run(tmp_path, "whole", **settings)
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    interrupted_copy(whole, crashed, step=2)
    result = run(tmp_path, "crashed", **settings)
    assert result["step"] == 4
    ends = [keras.saving.load_model(folder / "model.keras").get_weights()
            for folder in (whole, crashed)]
    for a, b in zip(*ends):
        np.testing.assert_array_equal(a, b)


def test_clear_errors(tmp_path, classification_teacher, hf_masked_lm):
    with pytest.raises(ValueError, match="needs one"):
        run(tmp_path, "a", task="distill_tinybert_task", student="tinybert_test_tiny")
    with pytest.raises(ValueError, match="takes none"):
        run(tmp_path, "b", task="classification", teacher=classification_teacher)
    with pytest.raises(ValueError, match="--student_layers instead"):
        run(tmp_path, "c", task="distill_distilbert", teacher=hf_masked_lm,
            student="distilbert_test_tiny", options=MLM_OPTIONS)
    with pytest.raises(ValueError, match="no masked-LM head"):
        run(tmp_path, "d", task="distill_distilbert", teacher=classification_teacher,
            options=MLM_OPTIONS)
    with pytest.raises(ValueError, match="is not the model this task builds"):
        run(tmp_path, "e", task="distill_tinybert_task", teacher=classification_teacher,
            student="tinybert_test_tiny", options={"distill_task": "multilabel"},
            data=str(_colors(tmp_path)))
    with pytest.raises(ValueError, match="4-layer student cannot map onto a 2-layer"):
        run(tmp_path, "f", task="distill_tinybert_task", teacher=classification_teacher,
            student="tinybert_4l_312d")
    vocab_size = zoo.load(classification_teacher).vocab_size
    four_heads = str(tmp_path / "four_heads.keras")
    zoo.build("tinybert_test_tiny", vocab_size=vocab_size, num_heads=4,
              teacher_hidden_size=16).save(four_heads)
    with pytest.raises(ValueError, match="student has 4 heads, the teacher 2"):
        run(tmp_path, "g", task="distill_tinybert_task", teacher=classification_teacher,
            student=four_heads)
    other_vocabulary = str(tmp_path / "other_vocabulary.keras")
    zoo.build("tinybert_test_tiny", vocab_size=vocab_size + 1).save(other_vocabulary)
    with pytest.raises(ValueError, match="both must read the same token ids"):
        run(tmp_path, "h", task="distill_tinybert_task", teacher=classification_teacher,
            student=other_vocabulary)


@pytest.mark.heavy
def test_prediction_only_distillation_takes_any_student(tmp_path, classification_teacher):
    # Logits alone: no hidden-state or attention matching, so a narrower BERT
    # without fit_dense (and other head counts) is fine.
    vocab_size = zoo.load(classification_teacher).vocab_size
    student = str(tmp_path / "narrow.keras")
    zoo.build("bert_test_tiny", vocab_size=vocab_size, hidden_size=8, num_heads=1,
              intermediate_size=16).save(student)
    result = run(tmp_path, "logits_only", task="distill_tinybert_task",
                 teacher=classification_teacher, student=student,
                 options={"distill_stage": "prediction"})
    assert result["step"] == 4 and "retention" in result["final"]


def test_refusals_before_any_training():
    from tasks.distillation.tinybert import TinyBertTaskDistillationTask

    with pytest.raises(ValueError, match="tag alignment"):
        TinyBertTaskDistillationTask(TaskConfig(options={
            "distill_task": "tagging", "augment_copies": 2, "augment_model": "x"}))


def _colors(tmp_path):
    from tests.tasks import synthetic

    return synthetic.color_multilabel(tmp_path / "colors", train=40, validation=10)


def test_augmentation_multiplies_the_training_split_only(hf_masked_lm):
    from tasks.distillation.tinybert import TinyBertTaskDistillationTask

    plain = TinyBertTaskDistillationTask(TaskConfig(sequence_length=32))
    task = TinyBertTaskDistillationTask(TaskConfig(sequence_length=32, options={
        "augment_copies": 2, "augment_model": hf_masked_lm}))
    original, augmented = plain.examples("train"), task.examples("train")
    assert len(original) < len(augmented) <= 3 * len(original)
    assert augmented[0] == original[0]  # each row first, then its variants
    texts = {row["text"] for row in original}
    variants = [row for row in augmented if row["text"] not in texts]
    assert variants and all(set(row) == set(original[0]) for row in variants)
    assert task.examples("validation") == plain.examples("validation")
    with pytest.raises(ValueError, match="needs augment_model"):
        TinyBertTaskDistillationTask(TaskConfig(options={"augment_copies": 2})).examples(
            "train")
