"""Token tagging: CoNLL reading, label alignment on word pieces, and learning."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from kerasbert.text import Preprocessor, WordPieceTokenizer
from tasks.training import metrics
from tasks.base import TaskConfig
from tasks.data import conll
from tasks.tagging import IGNORE, TaggingTask

CONLL_TEXT = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""

# Hand vocabulary: "newyork" is new + ##york, "blackburn" black + ##burn.
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
         "peter", "black", "##burn", "new", "##york", "in", "lives", "."]
LABELS = ["O", "B-LOC", "B-PER", "I-PER"]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_read_conll_skips_docstart_and_blank_lines(tmp_path):
    examples = conll.read_conll(write(tmp_path / "train.txt", CONLL_TEXT))
    assert examples == [
        {"tokens": ["EU", "rejects", "German", "call", "."],
         "tags": ["B-ORG", "O", "B-MISC", "O", "O"]},
        {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]},
        {"tokens": ["BRUSSELS", "1996-08-22"], "tags": ["B-LOC", "O"]},
    ]
    assert conll.label_list(examples) == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]


def test_folder_splits_and_bad_lines(tmp_path):
    write(tmp_path / "train.txt", "a O\nb B-X\n")
    write(tmp_path / "valid.txt", "c I-X\n")
    assert conll.load_examples(str(tmp_path), "validation") == [
        {"tokens": ["c"], "tags": ["I-X"]}]
    assert conll.load_examples(str(tmp_path), "train")[0]["tags"] == ["O", "B-X"]
    with pytest.raises(ValueError, match="bad.txt:2"):
        conll.read_conll(write(tmp_path / "bad.txt", "a O\nlonely\n"))


def test_tfds_conll2003_tags_become_names():
    """TFDS's conll2003 (features tokens, ner) through tfds.testing.mock_data, offline."""
    tfds = pytest.importorskip("tensorflow_datasets")
    asked = []

    def as_dataset(self, split, **kwargs):
        asked.append(split)
        return tf.data.Dataset.from_tensors({
            "tokens": tf.constant(["Peter", "Blackburn", "in", "Paris"]),
            "ner": tf.constant([1, 2, 0, 5], tf.int64),
            "pos": tf.constant([0, 0, 0, 0], tf.int64),
            "chunks": tf.constant([0, 0, 0, 0], tf.int64)})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        examples = conll.load_examples("conll2003", "validation")
    assert examples == [{"tokens": ["Peter", "Blackburn", "in", "Paris"],
                         "tags": ["B-PER", "I-PER", "O", "B-LOC"]}]
    assert str(asked[0]) == "dev"  # TFDS names the validation split "dev"


def tagging_task(tmp_path, text, sequence_length):
    config = TaskConfig(data=write(tmp_path / "data.txt", text),
                        sequence_length=sequence_length, options={"labels": LABELS})
    preprocessor = Preprocessor(WordPieceTokenizer(VOCAB), sequence_length)
    return TaggingTask(config), preprocessor


def test_labels_go_on_first_pieces(tmp_path):
    # lives in newyork . / peter blackburn lives in newyork (cut at 8)
    text = ("lives O\nin O\nnewyork B-LOC\n. O\n\n"
            "peter B-PER\nblackburn I-PER\nlives O\nin O\nnewyork B-LOC\n")
    task, preprocessor = tagging_task(tmp_path, text, sequence_length=8)
    features, labels, weights = next(iter(task.build_dataset("train", preprocessor, 2, False)))
    np.testing.assert_array_equal(features["input_word_ids"], [
        [2, 11, 10, 8, 9, 12, 3, 0],      # [CLS] lives in new ##york . [SEP] [PAD]
        [2, 5, 6, 7, 11, 10, 8, 3]])      # [CLS] peter black ##burn lives in new [SEP]
    np.testing.assert_array_equal(features["input_mask"], [[1] * 7 + [0], [1] * 8])
    expected_ids = np.array([
        [-1, 0, 0, 1, -1, 0, -1, -1],
        [-1, 2, 3, -1, 0, 0, 1, -1]])     # newyork's first piece kept, ##york cut
    one_hot = labels["logits"].numpy()
    assert one_hot.shape == (2, 8, len(LABELS))
    np.testing.assert_array_equal(one_hot, tf.one_hot(expected_ids, len(LABELS)))
    assert not one_hot[expected_ids == IGNORE].any()  # untagged rows are all zeros
    np.testing.assert_array_equal(weights["logits"], [
        [0, 1, 1, 1, 0, 1, 0, 0],
        [0, 1, 1, 0, 1, 1, 1, 0]])
    # Evaluation: each word's first-piece position; -1 for no position.
    _, indices, positions = next(iter(task.build_dataset(
        "train", preprocessor, 2, False, with_positions=True)))
    np.testing.assert_array_equal(indices, [0, 1])
    np.testing.assert_array_equal(positions, [[1, 2, 3, 5, -1], [1, 2, 4, 5, 6]])


def test_words_beyond_the_window_are_predicted_o(tmp_path):
    text = "peter B-PER\nlives O\nin O\nnewyork B-LOC\n"
    task, preprocessor = tagging_task(tmp_path, text, sequence_length=5)  # room for 3 pieces

    class Always(keras.Model):
        """Predicts tag 1 (B-LOC) everywhere."""

        def call(self, inputs):
            shape = tf.shape(inputs["input_word_ids"])
            return {"logits": tf.one_hot(tf.fill(shape, 1), len(LABELS))}

    predicted = task.predict_tags(Always(), "train", preprocessor, batch_size=4)
    assert predicted == [["B-LOC", "B-LOC", "B-LOC", "O"]]


def test_loss_and_accuracy_ignore_untagged_positions():
    task = TaggingTask(TaskConfig(options={"labels": LABELS}))
    ids = np.array([[IGNORE, 1, 2, IGNORE, 0]])
    labels = tf.one_hot(ids, len(LABELS))
    probabilities = np.array([[[.1, .2, .3, .4], [.1, .6, .2, .1], [.7, .1, .1, .1],
                               [.25, .25, .25, .25], [.9, .05, .03, .02]]], np.float32)
    weights = (ids != IGNORE).astype(np.float32)
    loss = task.build_losses()["logits"](labels, np.log(probabilities), sample_weight=weights)
    np.testing.assert_allclose(float(loss), -np.log([.6, .1, .9]).mean(), rtol=1e-5)
    accuracy = task.build_metrics()["logits"][0]
    accuracy.update_state(labels, np.log(probabilities))  # as `metrics=` calls it: no weights
    assert float(accuracy.result()) == pytest.approx(2 / 3)  # right on 1 and 0, wrong on 2
    assert keras.metrics.serialize(accuracy)["module"] == "keras.metrics"  # reloads anywhere


# Every word of the synthetic set whole, but five long entity words in pieces,
# so that tagging their first piece matters.
SPLIT_WORDS = {"chandrasekhar": ["chandra", "##sek", "##har"],
               "ouagadougou": ["ouaga", "##dou", "##gou"], "vladivostok": ["vladi", "##vostok"],
               "gwendolyn": ["gwen", "##dolyn"], "kathmandu": ["kath", "##mandu"]}
SYNTHETIC_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    piece for word in (conll.FILLERS + conll.PERSON_TRIGGERS + conll.PLACE_TRIGGERS
                       + conll.NAMES + conll.PLACES)
    for piece in SPLIT_WORDS.get(word, [word])]


def lexicon_tags(tokens):
    """Context-free baseline: a name is PER, a place LOC, wherever it stands."""
    tags, previous = [], None
    for token in tokens:
        kind = "PER" if token in conll.NAMES else "LOC" if token in conll.PLACES else None
        tags.append("O" if kind is None else ("I-" if kind == previous == "PER" else "B-") + kind)
        previous = kind
    return tags


@pytest.mark.heavy
def test_learns_context_dependent_entities():
    """A tiny BERT from scratch learns the synthetic NER set (conll.synthetic).

    Names and places are entities only after a trigger word ("mr", "in"...),
    and equal words stand as decoys (tag O) elsewhere. Chance levels on the
    held-out split: all-O scores F1 0; tagging every name and place by a
    word list (no context) scores the `lexicon` F1 below (0.81). The model
    must clear 0.95 and beat the word list by 0.1 (measured: 0.997).
    """
    keras.utils.set_random_seed(0)
    task = TaggingTask(TaskConfig(data="", sequence_length=32))
    train = task.examples("train")
    preprocessor = Preprocessor(WordPieceTokenizer(SYNTHETIC_VOCAB), 32)
    pieces = preprocessor.tokenizer.tokenize(["chandrasekhar ouagadougou paris"])
    assert pieces.row_lengths().numpy().tolist() == [3 + 3 + 1]

    backbone = zoo.build("bert_test_tiny", vocab_size=len(SYNTHETIC_VOCAB), hidden_size=32,
                         num_heads=2, intermediate_size=64, num_layers=2, max_sequence_length=64)
    model = task.build_model(backbone)
    model.compile(keras.optimizers.Adam(3e-3), loss=task.build_losses(),
                  metrics=task.build_metrics())
    batch_size = 32
    history = model.fit(task.build_dataset("train", preprocessor, batch_size, training=True),
                        steps_per_epoch=len(train) // batch_size, epochs=10, verbose=0)
    assert history.history["token_accuracy"][-1] > 0.95

    scores = task.evaluate(model, "validation", preprocessor, batch_size=64)
    held_out = task.examples("validation")
    lexicon = metrics.entity_f1([e["tags"] for e in held_out],
                                [lexicon_tags(e["tokens"]) for e in held_out])["f1"]
    print(f"held-out scores {scores}, word-list baseline F1 {lexicon:.3f}")
    assert lexicon < 0.85  # the decoys: context matters
    assert scores["f1"] > 0.95
    assert scores["f1"] > lexicon + 0.1
    assert scores["token_accuracy"] > 0.95
    assert set(scores) == {"f1", "precision", "recall", "token_accuracy"}
