"""Bad training data: an error naming the file, line and problem, or with
skip_bad_examples a warning per example and a count (tasks.data.bad_rows).

Each case writes a tiny --data folder, reads one split through its task
(no model), checks the error's exact text, then reads it again with
skip_bad_examples: the good examples are kept, the bad one is logged once
and counted once in task.skipped_examples, however often the split is read.
"""

import dataclasses
import json
import logging

import pytest
import tensorflow as tf

from tasks import catalog
from tasks.base import TaskConfig
from tasks.data.text_files import read_text_file
from tasks.training import runner

GOOD = "text\tlabel\ngood film\tpos\nbad film\tneg\n"
TAGS = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
LABELS_ANY = "Fix the row, or give every label (training ones included) with --labels"


def png(value=0):
    return tf.io.encode_png(tf.fill([4, 4, 3], tf.constant(value, tf.uint8))).numpy()


def squad(*qas):
    """A SQuAD file of one paragraph, one key per line (so each id has its line)."""
    context = "The capital of France is Paris."
    paragraph = {"context": context, "qas": list(qas)}
    return json.dumps({"data": [{"title": "t", "paragraphs": [paragraph]}]}, indent=1)


def qa(id_, start, text="Paris", question="Where?"):
    fields = {"id": id_, "question": question,
              "answers": [{"text": text, "answer_start": start}]}
    return {key: value for key, value in fields.items() if value is not None}


# (id, task, config, files, split, place, problem, fix, what, examples kept)
CASES = [
    ("empty_label_cell", "classification", {}, {"train.tsv": GOOD + "no label here\t\n"},
     "train", "train.tsv:4", "no label ('label' is empty or missing)", "Fix the row", "rows", 2),
    ("missing_label_column", "classification", {}, {"train.tsv": GOOD + "no tab at all\n"},
     "train", "train.tsv:4", "1 cell where the header has 2 (text, label): no 'label'",
     "Fix the row", "rows", 2),
    ("too_many_cells", "classification", {}, {"train.tsv": GOOD + "a\tpos\textra\n"},
     "train", "train.tsv:4", "3 cells where the header has 2 (text, label)", "Fix the row",
     "rows", 2),
    ("csv_short_row", "classification", {}, {"train.csv": "text,label\ngood,pos\nlonely\n"},
     "train", "train.csv:3", "1 cell where the header has 2 (text, label): no 'label'",
     "Fix the row", "rows", 1),
    # An unclosed quote would swallow every row after it: only its own line is lost.
    ("stray_quote_to_the_end", "classification", {},
     {"train.tsv": 'text\tlabel\ngood\tpos\n"stray quote\tpos\nbad film\tneg\nfine\tpos\n'},
     "train", "train.tsv:3",
     "an unmatched quote (\") joins lines 3-5 into one row (csv: unexpected end of data)",
     "Remove or close the stray quote", "rows", 3),
    ("stray_quote_closed_later", "classification", {},
     {"train.tsv": 'text\tlabel\n"stray\tpos\nsize 5"\tneg\ngood\tpos\n'},
     "train", "train.tsv:2",
     "an unmatched quote (\") joins lines 2-3 into one row (a cell holds tabs and line breaks)",
     "Remove or close the stray quote", "rows", 2),
    ("misplaced_quote", "classification", {},
     {"train.tsv": 'text\tlabel\ngood\tpos\n"a"b\tneg\n'}, "train", "train.tsv:3",
     "a stray quote (\") (csv: '\\t' expected after '\"')", "Remove or close the stray quote",
     "rows", 1),
    ("jsonl_not_json", "classification", {},
     {"train.jsonl": '{"text": "a", "label": "pos"}\n{"text": "a", "label": }\n'},
     "train", "train.jsonl:2", "not JSON (Expecting value at column 24)", "Fix the row", "rows",
     1),
    ("jsonl_not_an_object", "classification", {},
     {"train.jsonl": '{"text": "a", "label": "pos"}\n\n["b", "neg"]\n'},
     "train", "train.jsonl:3", 'a JSON list, not an object {"field": value, ...}',
     "Fix the row", "rows", 1),
    ("jsonl_label_key_absent", "classification", {},
     {"train.jsonl": '{"text": "a", "label": "pos"}\n{"text": "b"}\n'},
     "train", "train.jsonl:2", "no field 'label' (it has 'text')", "Fix the row", "rows", 1),
    ("jsonl_null_label", "classification", {},
     {"train.jsonl": '{"text": "a", "label": "pos"}\n{"text": "b", "label": null}\n'},
     "train", "train.jsonl:2", "no label ('label' is empty or missing)", "Fix the row", "rows",
     1),
    ("label_not_in_labels_option", "classification", {"options": {"labels": ("pos", "neg")}},
     {"train.tsv": GOOD + "so so\tmeh\n"}, "train", "train.tsv:4",
     "label 'meh' is not one of --labels ['pos', 'neg']", "Add it to --labels or fix the row",
     "rows", 2),
    ("evaluation_label_not_in_training", "classification", {},
     {"train.tsv": GOOD, "validation.tsv": "text\tlabel\nok\tpos\nso so\tmeh\n"},
     "validation", "validation.tsv:3", "label 'meh' is not among the training labels "
     "['neg', 'pos']", LABELS_ANY, "rows", 1),
    ("label_past_num_classes", "classification", {"num_classes": 2},
     {"train.tsv": "text\tlabel\na\t0\nb\t1\nc\t2\n"}, "train", "train.tsv:4",
     "label '2' has id 2, out of range of --num_classes=2 (labels in id order: "
     "['0', '1', '2'])", "Raise --num_classes or fix the row", "rows", 2),
    ("pair_without_label", "classification", {"text_fields": ("text_a", "text_b")},
     {"train.tsv": "text_a\ttext_b\tlabel\na\tb\tpos\nc\td\n"}, "train", "train.tsv:3",
     "2 cells where the header has 3 (text_a, text_b, label): no 'label'", "Fix the row",
     "rows", 1),
    ("regression_label_not_a_number", "regression", {},
     {"train.tsv": "text\tlabel\na\t0.5\nb\thigh\n"}, "train", "train.tsv:3",
     "label 'high' is not a number", "Fix the row", "rows", 1),
    ("regression_label_not_finite", "regression", {},
     {"train.tsv": "text\tlabel\na\t0.5\nb\tnan\n"}, "train", "train.tsv:3",
     "label 'nan' is not a finite number", "Fix the row", "rows", 1),
    ("multilabel_unknown_evaluation_label", "multilabel", {},
     {"train.tsv": "text\tlabel\na\tred,blue\nb\t\n",  # b: no label, a multilabel row may
      "validation.tsv": "text\tlabel\nc\tred,pink\n"},
     "validation", "validation.tsv:2", "label 'pink' is not among the training labels "
     "['blue', 'red']", LABELS_ANY, "rows", 0),
    ("sentence_pairs_score_not_a_number", "sentence_embedding",
     {"options": {"objective": "cosine"}},
     {"train.tsv": "text\ttext_b\tlabel\na\tb\t0.5\nc\td\tsimilar\n"}, "train", "train.tsv:3",
     "label 'similar' is not a number", "Fix the row", "rows", 1),
    ("sentence_pairs_unknown_evaluation_class", "sentence_embedding",
     {"options": {"objective": "softmax"}},
     {"train.tsv": "text\ttext_b\tlabel\na\tb\tparaphrase\nc\td\tunrelated\n",
      "validation.tsv": "text\ttext_b\tlabel\ne\tf\trelated\ng\th\tparaphrase\n"},
     "validation", "validation.tsv:2", "label 'related' is not among the training labels "
     "['paraphrase', 'unrelated']", LABELS_ANY, "rows", 1),
    ("choice_index_out_of_range", "multiple_choice", {},
     {"train.jsonl": '{"context": "A man", "choices": ["sits", "flies"], "label": 0}\n'
                     '{"context": "A cat", "choices": ["purrs", "barks"], "label": 2}\n'},
     "train", "train.jsonl:2",
     "label 2 is not the index of one of the 2 choices (0-1; TFDS test splits have no labels)",
     "Fix the row", "rows", 1),
    ("choice_label_not_an_index", "multiple_choice", {},
     {"train.tsv": 'context\tchoices\tlabel\nA man\t["sits", "flies"]\t0\n'
                   'A cat\t["purrs", "barks"]\tfirst\n'}, "train", "train.tsv:3",
     "label 'first' is not a choice index (0, 1, ...)", "Fix the row", "rows", 1),
    ("choices_cell_not_a_json_list", "multiple_choice", {},
     {"train.tsv": 'context\tchoices\tlabel\nA man\t["sits", "flies"]\t0\n'
                   'A cat\t["purrs" "barks"]\t1\n'}, "train", "train.tsv:3",
     "the choices cell is not a JSON list (Expecting ',' delimiter at column 10)", "Fix the row",
     "rows", 1),
    ("choice_label_missing", "multiple_choice", {},
     {"train.jsonl": '{"context": "A man", "choices": ["sits", "flies"], "label": 0}\n'
                     '{"context": "A cat", "choices": ["purrs", "barks"]}\n'}, "train",
     "train.jsonl:2", "no label ('label' is empty or missing)", "Fix the row", "rows", 1),
    ("squad_answer_not_in_context", "question_answering", {},
     {"train.json": squad(qa("q1", 25), qa("q2", 3))}, "train", "train.json:20",
     "question 'q2': answer 'Paris' is not at answer_start 3 of its context (that is "
     "' capi')", "Fix the answer's answer_start or text", "questions", 1),
    ("squad_missing_field", "question_answering", {},
     {"train.json": squad(qa("q1", 25), qa("q2", 25, question=None))}, "train",
     "train.json:20", "question 'q2' has no 'question' field", "Fix the question", "questions",
     1),
    ("conll_column_count", "tagging", {},
     {"train.txt": TAGS + "Blackburn NNP I-PER\n\nBRUSSELS NNP B-NP B-LOC\n"}, "train",
     "train.txt:5", "3 columns where the file's other lines have 4 (the token first, its tag "
     "last): 'Blackburn NNP I-PER'", "Fix the line", "sentences", 2),
    ("conll_evaluation_tag_not_in_training", "tagging", {},
     {"train.txt": TAGS, "valid.txt": "Peter NNP B-NP B-PER\n\nGerman JJ B-NP B-MISC\n"},
     "validation", "valid.txt:3", "tag 'B-MISC' (of 'German') is not among the training "
     "tags ['O', 'B-ORG', 'B-PER']", "Fix the sentence, or give every tag (training ones "
     "included) with --labels", "sentences", 1),
    ("unreadable_image", "image_classification", {},
     {"train/cat/0.png": png(), "train/cat/1.png": b"not an image", "train/dog/0.png": png(9)},
     "train", "train/cat/1.png", "not a readable image (Unknown image file format. One of "
     "JPEG, JPEG XL, PNG, GIF, BMP, WebP required.)", "Replace or remove the file", "images",
     2),
    ("image_folder_not_in_training", "image_classification", {},
     {"train/cat/0.png": png(), "train/dog/0.png": png(9), "validation/cat/0.png": png(),
      "validation/cow/0.png": png(5)}, "validation", "validation/cow/0.png",
     "label 'cow' is not among the training labels ['cat', 'dog']", "Fix the example, or give "
     "every label (training ones included) with --labels", "images", 1),
]


def write(folder, files):
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return str(folder)


def count(examples):
    return len(examples["labels"]) if isinstance(examples, dict) else len(examples)


@pytest.mark.parametrize("task, config, files, split, place, problem, fix, what, kept",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_a_bad_example_is_named_or_skipped_and_counted(tmp_path, caplog, task, config, files,
                                                       split, place, problem, fix, what, kept):
    config = TaskConfig(data=write(tmp_path / "data", files), **config)
    place = f"{tmp_path / 'data' / place}"
    with pytest.raises(ValueError) as error:
        catalog.task_class(task)(config).examples(split)
    assert str(error.value) == (f"{place}: {problem}. {fix}, or pass --skip_bad_examples to "
                                f"skip such {what}.")

    skipping = catalog.task_class(task)(dataclasses.replace(config, skip_bad_examples=True))
    with caplog.at_level(logging.WARNING):
        examples = skipping.examples(split)
        assert skipping.examples(split) is examples  # read once: counted and logged once
    assert count(examples) == kept
    assert skipping.skipped_examples[split] == 1
    logged = [record.getMessage() for record in caplog.records
              if "--skip_bad_examples" in record.getMessage()]
    assert logged == [f"{place}: {problem}; skipped (--skip_bad_examples)."]


def test_the_issue_file_names_its_bad_rows_and_trains_on_the_rest(tmp_path, caplog):
    # Six rows, one without a label and one with a stray quote: no longer
    # "4 training examples" in silence.
    data = write(tmp_path, {"train.tsv": "text\tlabel\ngreat\tpos\nawful\tneg\nno label\t\n"
                                         '"quoted\tpos\nfine\tpos\ndull\tneg\n'})
    settings = runner.RunSettings(task="classification", data=data, model_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"train\.tsv:5: an unmatched quote"):
        runner.make_task(settings).examples("train")
    task = runner.make_task(dataclasses.replace(settings, skip_bad_examples=True))
    with caplog.at_level(logging.WARNING):
        assert [row["text"] for row in task.examples("train")] == ["great", "awful", "fine",
                                                                   "dull"]
    assert task.labels() == ["neg", "pos"] and task.skipped_examples == {"train": 2}
    places = [record.getMessage().split(": ")[0] for record in caplog.records
              if "--skip_bad_examples" in record.getMessage()]
    assert places == [f"{data}/train.tsv:5", f"{data}/train.tsv:4"]  # header = line 1


def test_tools_reading_files_keep_every_row(tmp_path):
    # Feature extraction's row i is text i: a bad line is an error that does
    # not offer to skip it.
    path = write(tmp_path, {"texts.jsonl": '{"text": "a"}\nnot json\n'})
    with pytest.raises(ValueError) as error:
        read_text_file(f"{path}/texts.jsonl", ["text"])
    assert str(error.value) == (f"{path}/texts.jsonl:2: not JSON (Expecting value at column 1). "
                                "Fix the row.")


def test_an_unchanged_image_folder_is_not_decoded_again(tmp_path, monkeypatch):
    # A preempted run reads its folder at every restart: the verdict on the
    # same files (paths, sizes, modification times) is kept, a changed file
    # checks the folder again.
    from tasks import image_classification

    paths = [str(tmp_path / "0.png"), str(tmp_path / "1.png")]
    (tmp_path / "0.png").write_bytes(png())
    (tmp_path / "1.png").write_bytes(b"not an image")
    first = image_classification.unreadable_images(paths)
    assert list(first) == [1]
    decode = image_classification._decode_failures
    decoded = []
    monkeypatch.setattr(image_classification, "_decode_failures",
                        lambda paths: decoded.append(paths) or decode(paths))
    assert image_classification.unreadable_images(paths) == first and not decoded
    (tmp_path / "1.png").write_bytes(png(9))
    assert image_classification.unreadable_images(paths) == {} and decoded == [paths]
