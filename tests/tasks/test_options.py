"""Task options and run settings: declared once, every one a flag, and a flag
changes what the task does.

The flags are defined on a fresh absl FlagValues (tasks.run defines them on
the global one at import, which a test process may hold already); the one
test of tasks.run's own parsing runs in a subprocess.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import zoo
from kerasbert.text import Preprocessor, WordPieceTokenizer
from tasks import options as task_options
from tasks import catalog
from tasks.base import TaskConfig
from tasks.data import squad
from tasks.options import OptionError
from tasks.question_answering import QuestionAnsweringTask
from tasks.training import runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def flag_values():
    values = flags.FlagValues()
    runner.define_flags(values)
    return values


def task_from(flag_values, *argv):
    """The task a command line builds: flags -> RunSettings -> make_task."""
    flag_values.unparse_flags()
    flag_values(["tasks.run", *argv])
    return runner.make_task(runner.RunSettings.from_flags(flag_values))


def test_every_option_of_every_task_is_a_flag_listed_under_its_task(flag_values):
    for name in catalog.names():
        options_class = catalog.task_class(name).Options
        shown = flag_values.module_help(runner.task_heading(name))
        for field, _ in task_options.fields(options_class):
            assert field.name in flag_values, (name, field.name)
            assert f"--{field.name}:" in shown or f"--[no]{field.name}:" in shown, \
                (name, field.name)
    for field, _ in task_options.fields(runner.RunSettings):
        assert field.name in flag_values
        assert field.name in flag_values.module_help(runner.RUN_GROUP)
    # A flag several tasks share says each task's default.
    assert "0.1 (classification" in flag_values["classifier_dropout"].help
    # (image_classification's default, which distill_deit, its distillation, shares)
    assert "0.0 (distill_deit, image_classification)" in flag_values["classifier_dropout"].help


def test_run_settings_reach_the_training_loop_uncopied(flag_values):
    flag_values.unparse_flags()
    flag_values(["tasks.run", "--eval_batch_size=17", "--max_checkpoints=2", "--seed=5"])
    settings = runner.RunSettings.from_flags(flag_values)
    assert isinstance(settings, runner.loop.TrainingSettings)  # what loop.train reads
    assert (settings.eval_batch_size, settings.max_checkpoints, settings.seed) == (17, 2, 5)
    assert runner.make_task(settings).config.seed == 5  # e.g. TinyBERT augmentation's seed


def test_doc_stride_from_the_command_line_and_a_flagfile(flag_values, tmp_path):
    vocabulary = squad.synthetic_vocabulary()
    preprocessor = Preprocessor(WordPieceTokenizer(vocabulary), sequence_length=18)
    flagfile = tmp_path / "qa.flags"
    flagfile.write_text("--task=question_answering\n--doc_stride=2\n")
    small = task_from(flag_values, f"--flagfile={flagfile}")
    large = task_from(flag_values, "--task=question_answering", "--doc_stride=8")
    assert (small.options.doc_stride, large.options.doc_stride) == (2, 8)
    # The stride is the windows' overlap: a larger one takes more windows.
    windows = [len(task.features("validation", preprocessor)) for task in (small, large)]
    assert windows[1] > windows[0] > 300, windows  # 300 examples


def _masked_words(task, preprocessor, texts, seed):
    """Per row: the masked token positions and the word (start..end) of each token."""
    ids = preprocessor.tokenizer.tokenize(tf.constant(texts)).to_tensor()
    masker = task.masker(preprocessor.vocabulary)
    out = masker(ids, seed=seed)
    starts = np.asarray(preprocessor.vocabulary.word_start_table())[ids.numpy()]
    return out, ids.numpy(), starts


def test_whole_word_and_max_ngram_from_the_command_line(flag_values):
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##believ", "##able",
                  "walk", "##ing", "the", "cat", "sat", "re", "##read", "##s"]
    preprocessor = Preprocessor(WordPieceTokenizer(vocabulary), sequence_length=128)
    texts = ["unbelievable walking the cat sat rereads " * 6] * 64

    def words_split_and_run_length(*argv):
        task = task_from(flag_values, "--task=pretraining", *argv)
        out, ids, starts = _masked_words(task, preprocessor, texts, seed=(3, 4))
        split, runs = 0, []
        for row in range(len(ids)):
            chosen = np.zeros(ids.shape[1], bool)
            chosen[out["masked_lm_positions"][row][out["masked_lm_weights"][row] > 0]] = True
            word_ids = np.cumsum(starts[row])  # tokens of one word share an id
            for word in np.unique(word_ids):
                hit = chosen[word_ids == word]
                split += bool(hit.any() and not hit.all())
            edges = np.diff(np.concatenate([[0], chosen.astype(int), [0]]))
            runs += list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
        return split, np.mean(runs)

    pieces_split, _ = words_split_and_run_length()
    words_split, word_runs = words_split_and_run_length("--whole_word")
    _, ngram_runs = words_split_and_run_length("--whole_word", "--max_ngram=3")
    assert pieces_split > 0 and words_split == 0
    assert ngram_runs > 1.3 * word_runs  # spans of up to 3 words, not single words


def test_classifier_dropout_from_the_command_line(flag_values):
    backbone = zoo.build("bert_test_tiny")
    for task_name, head, labels in (("classification", "classifier", ["--labels=a,b"]),
                                    ("tagging", "tagging_head", ["--labels=O,B-X"]),
                                    ("multiple_choice", "multiple_choice_head", [])):
        task = task_from(flag_values, f"--task={task_name}", "--classifier_dropout=0.37",
                         *labels)
        model = task.build_model(backbone)
        assert model.get_layer(head).dropout == pytest.approx(0.37), task_name


def test_image_augment_from_the_command_line(flag_values):
    def first_batches(*argv):
        task = task_from(flag_values, "--task=image_classification", *argv)
        train = task.build_dataset("train", (8, 8, 1), 64, training=True, seed=1)
        evaluation = task.build_dataset("validation", (8, 8, 1), 64, training=False)
        return next(iter(train))[0].numpy(), next(iter(evaluation))[0].numpy()

    plain_train, plain_eval = first_batches()
    augmented_train, augmented_eval = first_batches("--augment=flip,crop")
    assert not np.allclose(plain_train, augmented_train)  # training images change
    np.testing.assert_array_equal(plain_eval, augmented_eval)  # evaluation's do not
    with pytest.raises(OptionError, match="flip, crop"):
        task_from(flag_values, "--task=image_classification", "--augment=rotate")


def test_an_option_of_another_task_is_refused_with_the_list(flag_values):
    with pytest.raises(OptionError, match=r"--task=classification has no option 'doc_stride'"
                       r".*classifier_dropout \(float, default 0.1\)"):
        task_from(flag_values, "--task=classification", "--doc_stride=64")
    # TinyBERT task distillation also takes its inner task's options ...
    task = task_from(flag_values, "--task=distill_tinybert_task", "--labels=no,yes",
                     "--distill_stage=prediction")
    assert task.inner.labels() == ["no", "yes"] and task.options.distill_stage == "prediction"
    # ... and names both lists when neither has it.
    with pytest.raises(OptionError, match="has no option 'doc_stride'.*Options of "
                       "distill_tinybert_task: layer_map"):
        task_from(flag_values, "--task=distill_tinybert_task", "--doc_stride=64")


def test_misspelt_and_mistyped_options_in_python():
    with pytest.raises(OptionError, match=r"no option 'doc_strid'\. Did you mean doc_stride\?"
                       r".*Options of --task=question_answering: doc_stride \(int"):
        QuestionAnsweringTask(TaskConfig(options={"doc_strid": 64}))
    with pytest.raises(OptionError, match=r"option doc_stride takes int, got 'wide' \(str\)"
                       r".*max_query_length"):
        QuestionAnsweringTask(TaskConfig(options={"doc_stride": "wide"}))
    with pytest.raises(OptionError, match="takes bool"):
        QuestionAnsweringTask(TaskConfig(options={"version_2": "yes"}))
    # An Options instance is taken as is; an int is taken for a float.
    options = QuestionAnsweringTask.Options(doc_stride=32)
    assert QuestionAnsweringTask(TaskConfig(options=options)).options is options
    assert QuestionAnsweringTask(TaskConfig(
        options={"null_score_threshold": 1})).options.null_score_threshold == 1.0


def test_the_command_line_names_the_options_of_the_task():
    """tasks.run itself, in a subprocess: flags become settings and options; a
    misspelt or mistyped flag exits naming the task's options."""
    script = (
        "import json\n"
        "from tasks import run\nfrom tasks.training import runner\n"
        "run.FLAGS(['prog', '--task=distill_tinybert_task', '--teacher=t.keras', '--student=s',"
        " '--layer_map=1,3', '--distill_stage=prediction', '--temperature=3'])\n"
        "settings = runner.RunSettings.from_flags(run.FLAGS)\n"
        "errors = []\n"
        "for argv in (['p', '--task=question_answering', '--doc_strid=64'],"
        "             ['p', '--task=question_answering', '--doc_stride=wide']):\n"
        "    run.FLAGS.unparse_flags()\n"
        "    try:\n"
        "        run.parse_flags(argv)\n"
        "    except SystemExit as error:\n"
        "        errors.append(str(error))\n"
        "print(json.dumps([settings.teacher, settings.student, settings.options,"
        " settings.source, errors]))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    teacher, student, options, source, errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert (teacher, student) == ("t.keras", "s")
    assert options == {"layer_map": [1, 3], "distill_stage": "prediction", "temperature": 3.0}
    assert source == "t.keras"  # the teacher's tokenizer is the student's
    assert len(errors) == 2
    assert "doc_strid" in errors[0] and "Did you mean" in errors[0]
    assert "doc_stride" in errors[1] and "wide" in errors[1]
    for message in errors:
        assert ("Options of --task=question_answering: doc_stride (int or None, default None)"
                in message)
