"""Exports of every serving kind, called as a server would call them.

Each model is a task model on a tiny random backbone, saved as tasks.run
saves one (model.keras, vocab.txt, serving.json). The export is called in a
fresh process that loads only TensorFlow and tensorflow-text's op
libraries, and every signature's outputs are checked against the
in-process Keras model on the same inputs.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
import zoo
from export.verify import CallError, call_exports_in_fresh_process
from kerasbert.text import build_wordpiece_vocabulary
from tasks.base import TaskConfig
from tests.export import odd_requests
from tests.text_corpus import training_corpus

TOLERANCE = 1e-5
SEQUENCE = 24
TEXTS = ["the model reads a short text", "", "a long text " * 40,
         "Paris and London, then Tokyo!"]
TEXTS_B = ["what it says", "and another", "", "the second segment " * 30]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    build_wordpiece_vocabulary(training_corpus()[:400], 300, lower_case=True,
                               output_file=str(folder / "vocab.txt"))
    return folder


def save_task_model(folder, task, backbone, tokenizer_dir):
    """model.keras + tokenizer files + serving.json, as tasks.run leaves them."""
    os.makedirs(folder, exist_ok=True)
    model = task.build_model(backbone)
    model.save(os.path.join(folder, "model.keras"))
    if tokenizer_dir is not None:
        zoo.save_tokenizer(zoo.load_preprocessor(str(tokenizer_dir)).tokenizer, str(folder))
    spec = task.serving_spec(SEQUENCE, "longest_first")
    export.write_spec(spec, str(folder))
    return model, spec


def text_backbone(tokenizer_dir, preset="bert_test_tiny"):
    vocab_size = sum(1 for _ in open(tokenizer_dir / "vocab.txt"))
    return zoo.build(preset, vocab_size=vocab_size, dropout=0.0)


def examples(texts, texts_b=None):
    """Serialized tf.Examples with `text` (and `text_b`) features."""
    serialized = []
    for index, text in enumerate(texts):
        feature = {"text": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[text.encode()]))}
        if texts_b is not None:
            feature["text_b"] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[texts_b[index].encode()]))
        serialized.append(tf.train.Example(
            features=tf.train.Features(feature=feature)).SerializeToString())
    return np.array(serialized, dtype=object)


def signature_calls(texts, texts_b=None, ids=None):
    """The same inputs for every text signature."""
    text_inputs = {"text": np.array(texts, dtype=object)}
    if texts_b is not None:
        text_inputs["text_b"] = np.array(texts_b, dtype=object)
    calls = {"serving_default": text_inputs, "serve_examples": {
        "examples": examples(texts, texts_b)}}
    if ids is not None:
        calls["serve_ids"] = {name: np.asarray(value) for name, value in ids.items()}
    return calls


def assert_close(actual, expected, name):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64),
                               atol=TOLERANCE, err_msg=name)


# Every kind's export is built below and all are called in ONE fresh process
# (TensorFlow loads once): `served[case]` = (model, {signature: outputs}, extra);
# the same process sends each kind the odd requests of tests/export/odd_requests.py
# (`odd_served[case]` = ({call: inputs}, {call: outputs or CallError})).

def classifier_case(root, tokenizer_dir, pair):
    from tasks.classification import TextClassificationTask

    fields = ("text_a", "text_b") if pair else ("text",)
    task = TextClassificationTask(TaskConfig(text_fields=fields, options={
        "labels": ["negative", "neutral", "positive"]}))
    model, spec = save_task_model(root / "run", task, text_backbone(tokenizer_dir),
                                  tokenizer_dir)
    assert spec.text_inputs == (("text", "text_b") if pair else ("text",))
    version = export.export_model(str(root / "run"), str(root / "exports" / "clf"))
    assert version.endswith(os.path.join("clf", "1"))
    texts_b = TEXTS_B if pair else None
    preprocessor = zoo.load_preprocessor(str(root / "run" / "model.keras"),
                                         sequence_length=SEQUENCE)
    ids = {k: v.numpy() for k, v in preprocessor(TEXTS, texts_b).items()}
    return version, model, signature_calls(TEXTS, texts_b, ids), ids


def tagger_case(root, tokenizer_dir):
    from tasks.tagging import TaggingTask

    task = TaggingTask(TaskConfig(options={"labels": TAGS}))
    model, _ = save_task_model(root / "run", task, text_backbone(tokenizer_dir), tokenizer_dir)
    version = export.export_model(str(root / "run"), str(root / "exports" / "ner"))
    preprocessor = zoo.load_preprocessor(str(root / "run" / "model.keras"),
                                         sequence_length=SEQUENCE)
    ids = {k: v.numpy() for k, v in preprocessor(TEXTS).items()}
    return version, model, signature_calls(TEXTS, ids=ids), (ids, preprocessor)


# Question answering: long contexts take several windows (doc_stride 4 at
# sequence 24); capitals, accents and punctuation come back as written.
QUESTIONS = TEXTS + ["Who owns it?", "where?"]
CONTEXTS = TEXTS_B + ["Zürich's Café, near the U.S. border, opened in 1995; its owner: "
                      "Ångström (née Müller).", "Ça va? " * 12]
QA_OPTIONS = {"max_answer_length": 5, "doc_stride": 4, "max_query_length": 8,
              "n_best_size": SEQUENCE, "version_2": False}


def qa_case(root, tokenizer_dir, backbone):
    from tasks.question_answering import QuestionAnsweringTask

    task = QuestionAnsweringTask(TaskConfig(sequence_length=SEQUENCE, options=QA_OPTIONS))
    model, spec = save_task_model(root / "run", task, backbone, tokenizer_dir)
    version = export.export_model(str(root / "run"), str(root / "exports" / "qa"))
    preprocessor = zoo.load_preprocessor(str(root / "run" / "model.keras"),
                                         sequence_length=SEQUENCE)
    ids = {k: v.numpy() for k, v in preprocessor(QUESTIONS, CONTEXTS).items()}  # one window
    questions = [dict(id=str(i), question=q, context=c)
                 for i, (q, c) in enumerate(zip(QUESTIONS, CONTEXTS))]
    decoded = task.answer(model, questions, preprocessor, 64, version_2=spec.version_2)
    windows = np.bincount(task.windows_of(questions, preprocessor).example_index)
    return (version, model, signature_calls(QUESTIONS, CONTEXTS, ids),
            (ids, preprocessor, decoded, windows))


def backbone_case(root, tokenizer_dir):
    # Any checkpoint zoo.load reads serves as a backbone: here a .keras
    # backbone with its vocabulary beside it, and no serving.json.
    backbone = text_backbone(tokenizer_dir)
    folder = root / "backbone"
    os.makedirs(folder)
    backbone.save(folder / "model.keras")
    zoo.save_tokenizer(zoo.load_preprocessor(str(tokenizer_dir)).tokenizer, str(folder))
    version = export.export_model(str(folder), str(root / "exports" / "encoder"))
    ids = zoo.load_preprocessor(str(folder / "model.keras"), sequence_length=32)(TEXTS)
    ids = {k: v.numpy() for k, v in ids.items()}
    return version, backbone, signature_calls(TEXTS, ids=ids), ids


def png_bytes(pixels):
    return tf.io.encode_png(tf.constant(pixels, tf.uint8)).numpy()


def vit_case(root):
    from tasks.image_classification import ImageClassificationTask

    task = ImageClassificationTask(TaskConfig(options={"labels": ["cat", "dog"],
                                                       "mean": 0.5, "std": 0.25}))
    backbone = zoo.build("vit_test_tiny", dropout=0.0)
    model, spec = save_task_model(root / "run", task, backbone, None)
    version = export.export_model(str(root / "run"), str(root / "exports" / "vit"))
    height, width = spec.image_size
    rng = np.random.default_rng(0)
    # Three sizes: the export resizes as the training pipeline does.
    pixels = [rng.integers(0, 256, (h, w, spec.num_channels)) for h, w in
              ((height, width), (height * 2, width), (7, 5))]
    encoded = np.array([png_bytes(p) for p in pixels], dtype=object)
    images = np.stack([(tf.image.resize(p.astype(np.float32), (height, width)).numpy() / 255.0
                        - 0.5) / 0.25 for p in pixels])
    example_list = [tf.train.Example(features=tf.train.Features(feature={
        "image_bytes": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))}))
        .SerializeToString() for b in encoded]
    calls = {"serving_default": {"image_bytes": encoded},
             "serve_ids": {"images": images.astype(np.float32)},
             "serve_examples": {"examples": np.array(example_list, dtype=object)}}
    return version, model, calls, images


def albert_qa_case(root):
    # SentencePiece in the graph (tf-text's sentencepiece ops) in the
    # TensorFlow-only process.
    from kerasbert.text import build_sentencepiece_model

    os.makedirs(root)
    model_file = build_sentencepiece_model(training_corpus()[:400], 200,
                                           str(root / "spiece"), lower_case=True)
    folder = root / "sp"
    os.makedirs(folder)
    os.replace(model_file, folder / "spiece.model")
    tokenizer = zoo.load_preprocessor(str(folder)).tokenizer
    assert type(tokenizer).__name__ == "SentencePieceTokenizer"
    backbone = zoo.build("albert_test_tiny", vocab_size=tokenizer.vocabulary.size, dropout=0.0)
    return qa_case(root, folder, backbone)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tokenizer_dir):
    """(cases, {version: calls}, {version: results}): every kind's regular and
    odd calls in one fresh process."""
    # Seeded: the random classifiers' margins decide how many labels the int8
    # check can compare (unseeded, about 1 run in 10 had none clear).
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("kinds")
    cases = {
        "classifier": classifier_case(root / "clf", tokenizer_dir, pair=False),
        "pair_classifier": classifier_case(root / "pair", tokenizer_dir, pair=True),
        "tagger": tagger_case(root / "ner", tokenizer_dir),
        "qa": qa_case(root / "qa", tokenizer_dir, text_backbone(tokenizer_dir)),
        "albert_qa": albert_qa_case(root / "albert"),
        "backbone": backbone_case(root / "encoder", tokenizer_dir),
        "vit": vit_case(root / "vit"),
    }
    from tests.export import test_quantize

    cases["int8_classifier"] = test_quantize.int8_classifier_case(
        root / "clf", cases["classifier"][1], SEQUENCE)
    calls = {version: dict(regular) for version, _, regular, _ in cases.values()}
    for name, (version, _, regular, _) in cases.items():
        if name == "vit":
            height, width = export.read_spec(os.path.join(version, "assets.extra")).image_size
            calls[version].update(odd_requests.image_calls(
                regular["serving_default"]["image_bytes"], height, width))
        else:
            calls[version].update(odd_requests.text_calls(regular["serving_default"],
                                                          qa_context(name)))
    return cases, calls, call_exports_in_fresh_process(calls, record_errors=True)


@pytest.fixture(scope="module")
def served(one_process):
    cases, _, outputs = one_process
    regular = {name: {call: outputs[version][call] for call in calls}
               for name, (version, _, calls, _) in cases.items()}
    failed = {(name, call): result for name, results in regular.items()
              for call, result in results.items() if isinstance(result, CallError)}
    assert not failed, failed
    return {name: (model, regular[name], extra)
            for name, (_, model, _, extra) in cases.items()}


@pytest.fixture(scope="module")
def odd_served(one_process):
    cases, calls, outputs = one_process
    return {name: (calls[version], outputs[version]) for name, (version, *_) in cases.items()}


@pytest.mark.heavy
def test_int8_classifier(served):
    from tests.export import test_quantize

    test_quantize.check_int8_classifier(*served["int8_classifier"])


@pytest.mark.heavy
@pytest.mark.parametrize("case", ["classifier", "pair_classifier"])
def test_text_classifier(served, case):
    model, outputs, ids = served[case]
    logits = np.asarray(model(ids)["logits"])
    for signature in ("serving_default", "serve_ids", "serve_examples"):
        result = outputs[signature]
        assert sorted(result) == ["label", "label_name", "logits", "probabilities"]
        assert_close(result["logits"], logits, signature)
        assert_close(result["probabilities"], tf.nn.softmax(logits).numpy(), signature)
        np.testing.assert_array_equal(result["label"], logits.argmax(-1))
        assert [name.decode() for name in result["label_name"]] == [
            ["negative", "neutral", "positive"][i] for i in logits.argmax(-1)]


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.mark.heavy
def test_tagger(served):
    model, outputs, (ids, preprocessor) = served["tagger"]
    logits = np.asarray(model(ids)["logits"])
    # A word's tag on its first sub-token; continuations, [CLS], [SEP] and
    # padding get "".
    tokens = np.array(preprocessor.vocabulary.tokens)[ids["input_word_ids"]]
    first_pieces = (ids["input_mask"] == 1) & ~np.char.startswith(
        tokens.astype(str), "##") & ~np.isin(tokens, ["[CLS]", "[SEP]", "[PAD]"])
    expected_tags = np.where(first_pieces, np.array(TAGS)[logits.argmax(-1)], "")
    assert (expected_tags != "").sum() >= 10
    for signature, result in outputs.items():
        assert sorted(result) == ["logits", "tag_ids", "tags"]
        assert_close(result["logits"], logits, signature)
        np.testing.assert_array_equal(result["tag_ids"], logits.argmax(-1))
        np.testing.assert_array_equal(result["tags"].astype(str), expected_tags)


def best_span(start, end, context, max_length):
    """The reference decoding in numpy: the best (i, j) in the context."""
    best, answer = -np.inf, (-1, -1)
    for i in np.flatnonzero(context):
        for j in np.flatnonzero(context):
            if i <= j < i + max_length and start[i] + end[j] > best:
                best, answer = start[i] + end[j], (i, j)
    return answer


@pytest.mark.heavy
@pytest.mark.parametrize("case", ["qa", "albert_qa"])
def test_question_answering(served, case):
    """Raw text: every window of a long context scored, the answer the task
    decodes, read from the context's own characters. serve_ids: one packed
    window, its best span (numpy's exhaustive search: n_best covers it)."""
    model, outputs, (ids, preprocessor, decoded, windows) = served[case]
    assert windows.max() >= 4 and windows[QUESTIONS.index("Who owns it?")] >= 2
    for signature in ("serving_default", "serve_examples"):
        result = outputs[signature]
        assert sorted(result) == ["answer", "answer_char_end", "answer_char_start",
                                  "null_score", "score"]
        assert [a.decode() for a in result["answer"]] == list(decoded["answer"]), signature
        for name in ("answer_char_start", "answer_char_end"):
            np.testing.assert_array_equal(result[name], decoded[name])
        for name in ("score", "null_score"):
            assert_close(result[name], decoded[name], signature)
        for answer, start, end, context in zip(decoded["answer"], result["answer_char_start"],
                                               result["answer_char_end"], CONTEXTS):
            assert answer == (context[start:end] if context.strip() else "")
    raw = model(ids)
    start, end = np.asarray(raw["start_logits"]), np.asarray(raw["end_logits"])
    word_ids = ids["input_word_ids"]
    context = (ids["input_type_ids"] == 1) & (ids["input_mask"] == 1) & (
        word_ids != preprocessor.vocabulary.id_of("sep"))
    spans = [best_span(start[b], end[b], context[b], 5) for b in range(len(QUESTIONS))]
    assert spans[2] == (-1, -1)  # an empty context has no answer
    result = outputs["serve_ids"]
    assert_close(result["start_logits"], start, "serve_ids")
    assert_close(result["end_logits"], end, "serve_ids")
    np.testing.assert_array_equal(result["answer_start"], [s[0] for s in spans])
    np.testing.assert_array_equal(result["answer_end"], [s[1] for s in spans])


@pytest.mark.heavy
def test_bare_backbone_checkpoint(served):
    backbone, outputs, ids = served["backbone"]
    expected = backbone(ids)
    for signature, result in outputs.items():
        assert sorted(result) == ["pooled_output", "sequence_output"]
        assert_close(result["sequence_output"], expected["sequence_output"], signature)
        assert_close(result["pooled_output"], expected["pooled_output"], signature)


@pytest.mark.heavy
def test_vit_classifier_serves_image_bytes(served):
    model, outputs, images = served["vit"]
    logits = np.asarray(model(images)["logits"])
    for signature, result in outputs.items():
        assert sorted(result) == ["label", "label_name", "logits", "probabilities"]
        assert_close(result["logits"], logits, signature)
        assert [n.decode() for n in result["label_name"]] == [
            ["cat", "dog"][i] for i in logits.argmax(-1)]


TEXT_KINDS = ["classifier", "pair_classifier", "tagger", "qa", "albert_qa", "backbone",
              "int8_classifier"]


def qa_context(case):
    """The input holding a question-answering case's context (None for other kinds)."""
    return "text_b" if case in ("qa", "albert_qa") else None


@pytest.mark.heavy
@pytest.mark.parametrize("case", TEXT_KINDS)
def test_odd_text_requests_are_answered(odd_served, case):
    """Invalid UTF-8 (as its replacement), NUL bytes, empty strings, a huge
    text, an empty and a large batch, in each text input."""
    calls, outputs = odd_served[case]
    odd_requests.check_text_answers(calls, outputs, qa_context(case))


@pytest.mark.heavy
@pytest.mark.parametrize("case", TEXT_KINDS)
def test_text_after_a_nul_is_read(odd_served, case):
    # tensorflow-text's regex_split and tf.strings.lower end a string at its
    # first NUL: the tokenizers and QA's context words carry NUL through.
    odd_requests.text_after_nul_changes_the_answer(*odd_served[case])


@pytest.mark.heavy
def test_odd_images_are_answered_or_refused(odd_served):
    """Corrupt bytes refused with InvalidArgumentError; a 1x1, a 4000x3000, a
    grayscale, an RGBA, a 16-bit PNG and an animated GIF answered as the RGB
    picture they show; an empty and a large batch."""
    odd_requests.check_image_answers(*odd_served["vit"])


@pytest.fixture(scope="module")
def classifier_export(tmp_path_factory, tokenizer_dir):
    """A single-text classifier export, loaded in this process, and its model."""
    from tasks.classification import TextClassificationTask

    root = tmp_path_factory.mktemp("classifier")
    task = TextClassificationTask(TaskConfig(options={"labels": ["no", "yes"]}))
    model, _ = save_task_model(root / "run", task, text_backbone(tokenizer_dir), tokenizer_dir)
    version = export.export_model(str(root / "run"), str(root / "exports" / "clf"))
    return root, version, model


def test_more_classes_than_seen_labels_are_named_by_id(tmp_path, tokenizer_dir):
    from tasks.classification import TextClassificationTask

    task = TextClassificationTask(TaskConfig(num_classes=4, options={"labels": ["a", "b"]}))
    _, spec = save_task_model(tmp_path / "run", task, text_backbone(tokenizer_dir),
                              tokenizer_dir)
    assert spec.label_names == ("a", "b", "2", "3")


def test_export_folders_are_readable_by_other_users(classifier_export):
    _, version, _ = classifier_export
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(version).st_mode & 0o777 == 0o777 & ~umask
    assert os.stat(os.path.join(version, "saved_model.pb")).st_mode & 0o777 == 0o666 & ~umask


def test_signatures_refuse_wrong_inputs_and_handle_odd_text(classifier_export):
    _, version, _ = classifier_export
    serve = tf.saved_model.load(version).signatures
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serve["serving_default"](text=tf.constant([1, 2]))  # numbers, not strings
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serve["serving_default"](text=tf.constant([["a", "b"]]))  # [batch] strings only
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serve["serve_ids"](input_word_ids=tf.constant([[1.5]]), input_mask=tf.constant([[1]]),
                           input_type_ids=tf.constant([[0]]))  # float ids
    result = serve["serving_default"](text=tf.constant(["", " ", "word " * 1000]))
    assert result["probabilities"].shape == (3, 2)
    assert np.isfinite(result["logits"].numpy()).all()


def test_concurrent_calls_match_sequential_ones(classifier_export):
    import concurrent.futures

    _, version, _ = classifier_export
    serve = tf.saved_model.load(version).signatures["serving_default"]
    batches = [[f"request {i} " * (i % 7 + 1), TEXTS[i % len(TEXTS)]] for i in range(32)]
    sequential = [serve(text=tf.constant(b))["logits"].numpy() for b in batches]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        concurrent_results = list(pool.map(
            lambda b: serve(text=tf.constant(b))["logits"].numpy(), batches))
    for a, b in zip(sequential, concurrent_results):
        np.testing.assert_array_equal(a, b)


def test_versions_and_layout(classifier_export):
    root, version, _ = classifier_export
    base = os.path.dirname(version)
    assert export.next_version(base) == 2
    again = export.export_model(str(root / "run"), base)
    assert again == os.path.join(base, "2")
    with pytest.raises(FileExistsError, match="immutable"):
        export.export_model(str(root / "run"), base, version=1)
    assert sorted(os.listdir(base)) == ["1", "2"]  # no temporary folder left
    for name in ("saved_model.pb", "variables", os.path.join("assets.extra", "serving.json"),
                 os.path.join("assets.extra", "tf_serving_warmup_requests")):
        assert os.path.exists(os.path.join(again, name)), name


def test_warmup_requests_are_real_predict_requests(classifier_export):
    from tensorflow_serving.apis import prediction_log_pb2

    _, version, _ = classifier_export
    serve = tf.saved_model.load(version).signatures
    path = os.path.join(version, "assets.extra", "tf_serving_warmup_requests")
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(path)]
    assert len(logs) == 3
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "clf"
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        outputs = serve[request.model_spec.signature_name](
            **{name: tf.constant(value) for name, value in inputs.items()})
        assert np.isfinite(outputs["logits"].numpy()).all()


def test_variables_are_stored_once(tmp_path, tokenizer_dir):
    from tasks.classification import TextClassificationTask

    vocab_size = sum(1 for _ in open(tokenizer_dir / "vocab.txt"))
    backbone = zoo.build("bert_tiny_uncased", vocab_size=vocab_size)
    task = TextClassificationTask(TaskConfig(options={"labels": ["a", "b"]}))
    model, _ = save_task_model(tmp_path / "run", task, backbone, tokenizer_dir)
    version = export.export_model(str(tmp_path / "run"), str(tmp_path / "exports" / "tiny"))
    variables = os.path.join(version, "variables")
    stored = sum(os.path.getsize(os.path.join(variables, f)) for f in os.listdir(variables))
    weights = sum(w.numpy().astype(np.float32).nbytes for w in model.weights)
    print(f"variables/ {stored:,} bytes for {weights:,} bytes of float32 weights "
          f"({stored / weights:.3f}x)")
    assert stored <= 1.1 * weights, (stored, weights)
