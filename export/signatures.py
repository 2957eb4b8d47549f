"""The serving signatures: raw text or image bytes, ids, tf.Example.

`ServingModule` is a tf.Module that tracks the model's variables once (a
list of the variables themselves, not the Keras model, whose layers would
track them a second time) plus the tokenizer, and whose signatures call the
model:

  serving_default   text [batch] string (+ text_b) -> tokenized and packed in
                    the graph; image_bytes [batch] string (JPEG/PNG) ->
                    decoded, resized and normalized in the graph
  serve_ids         input_word_ids, input_mask, input_type_ids int32
                    [batch, seq]; images float32 [batch, h, w, c]
  serve_examples    examples [batch] serialized tf.Example with the same
                    features as serving_default (text/text_b or image_bytes)

Every signature returns the same named outputs for its kind (see
`named_outputs`), but for question answering: raw text is answered over
every window of its context (export/spans.py), one packed window in
serve_ids gets that window's best span. Multiple choice (text + choices [batch, n]) has its own
signatures in export/choices.py.
"""

import tensorflow as tf

from export import spans
from export.images import decode_images

TEXT_IDS = ("input_word_ids", "input_mask", "input_type_ids")


def _signature(function, input_signature):
    """A serving signature, traced once: its concrete function.

    Not a tf.function attribute: tf.saved_model.save lists those and
    traces each again (a tf.function's first trace and its later ones use
    separate caches), which doubled an export's time. No autograph: the
    signatures hold no Python control flow on tensors, and transpiling the
    tokenizers' Python took most of the rest."""
    return tf.function(function, input_signature=input_signature,
                       autograph=False).get_concrete_function()


def named_outputs(spec, outputs, features, tokenizer=None):
    """The model's raw outputs -> the named serving outputs of `spec.kind`.

    classifier, image_classifier: logits, probabilities, label (int32),
        label_name (string, when the spec has label names)
    regression: score
    multilabel: logits, probabilities (sigmoid), labels (int32 0/1 per label),
        label_names (comma-joined names of the predicted labels, when named)
    tagger: logits, tag_ids [batch, seq], tags (string: the tag of each word
        on its first sub-token, "" elsewhere)
    span: raw text in (question, context): answer, answer_char_start,
        answer_char_end, score, null_score (see export/spans.py); one packed
        window in (serve_ids): start_logits, end_logits, answer_start,
        answer_end (token positions), score
    backbone: sequence_output (and pooled_output where the family has one)
    embedding: embedding [batch, D] (a sentence encoder's; unit length when
        the encoder normalizes)
    """
    kind = spec.kind
    names = tf.constant(list(spec.label_names) or [""], tf.string)
    if kind == "backbone":
        result = {"sequence_output": tf.cast(outputs["sequence_output"], tf.float32)}
        if "pooled_output" in outputs:
            result["pooled_output"] = tf.cast(outputs["pooled_output"], tf.float32)
        return result
    if kind == "embedding":
        return {"embedding": tf.cast(outputs["embedding"], tf.float32)}
    if kind == "span":  # one packed window (serve_ids); raw text goes through spans.py
        return spans.window_outputs(spec, outputs, features)
    logits = tf.cast(outputs["logits"], tf.float32)
    if kind == "regression":
        return {"score": logits[:, 0]}
    if kind == "multilabel":
        probabilities = tf.sigmoid(logits)
        labels = tf.cast(probabilities > 0.5, tf.int32)
        result = {"logits": logits, "probabilities": probabilities, "labels": labels}
        if spec.label_names:
            chosen = tf.ragged.boolean_mask(tf.broadcast_to(names, tf.shape(labels)),
                                            labels > 0)
            result["label_names"] = tf.strings.reduce_join(chosen, axis=-1, separator=",")
        return result
    if kind == "tagger":
        tag_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        result = {"logits": logits, "tag_ids": tag_ids}
        if spec.label_names and tokenizer is not None:
            # A word's tag sits on its first sub-token (as the tagging task
            # trains): other positions, special tokens and padding get "".
            result["tags"] = tf.where(word_starts(tokenizer, features),
                                      tf.gather(names, tag_ids), "")
        return result
    label = tf.argmax(logits, axis=-1, output_type=tf.int32)
    result = {"logits": logits, "probabilities": tf.nn.softmax(logits), "label": label}
    if spec.label_names:
        result["label_name"] = tf.gather(names, label)
    return result


def word_starts(tokenizer, features):
    """bool [batch, seq]: real tokens that begin a word (not [CLS]/[SEP]/padding)."""
    vocabulary = tokenizer.vocabulary
    table = vocabulary.word_start_table().copy()
    table[vocabulary.special_ids] = False
    ids = features["input_word_ids"]
    return tf.logical_and(tf.gather(tf.constant(table), ids),
                          tf.equal(features["input_mask"], 1))


class ServingModule(tf.Module):
    """A model, its preprocessing and its signatures, ready for tf.saved_model.save."""

    def __init__(self, model, spec, preprocessor=None):
        super().__init__(name="serving")
        # The variables once, as a plain list; the model itself stays out of
        # the tracked attributes (its layers would track them again).
        self.model_variables = [variable.value for variable in model.weights]
        self.preprocessor = preprocessor
        self.spec = spec
        call_model = _model_caller(model)
        tokenizer = preprocessor.tokenizer if preprocessor is not None else None

        def from_features(features):
            return named_outputs(spec, call_model(features), features, tokenizer)

        if spec.is_image:
            height, width = spec.image_size
            channels = spec.num_channels

            def from_bytes(image_bytes):
                image_bytes = _checked(image_bytes, [None])
                images = decode_images(image_bytes, height, width, channels, spec.mean, spec.std)
                return from_features({"images": images})

            self.serving_default = _signature(
                from_bytes, input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")])
            self.serve_ids = _signature(
                lambda images: from_features(
                    {"images": _checked(images, [None, height, width, channels])}),
                input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32,
                                               "images")])
            example_features = {"image_bytes": tf.io.FixedLenFeature([], tf.string)}
            self.serve_examples = _signature(
                lambda examples: from_bytes(tf.io.parse_example(
                    _checked(examples, [None]), example_features)["image_bytes"]),
                input_signature=[tf.TensorSpec([None], tf.string, "examples")])
            return
        if spec.kind == "choice":  # text + choices [batch, n]: export/choices.py
            from export.choices import choice_signatures  # (it imports this module)

            self.serving_default, self.serve_ids, self.serve_examples = choice_signatures(
                call_model, spec, preprocessor)
            return

        text_names = spec.text_inputs

        def from_text(*texts):
            texts = [valid_utf8(_checked(text, [None])) for text in texts]
            if spec.kind == "span":  # every window of a long context, answers from its text
                return spans.answer_questions(spec, call_model, tokenizer, *texts)
            return from_features(preprocessor(*texts))

        if len(text_names) == 1:
            def serving_default(text):
                return from_text(text)
        else:
            def serving_default(text, text_b):
                return from_text(text, text_b)
        self.serving_default = _signature(
            serving_default, input_signature=[tf.TensorSpec([None], tf.string, name)
                                              for name in text_names])
        self.serve_ids = _signature(
            lambda input_word_ids, input_mask, input_type_ids: from_features(_checked_ids(
                {"input_word_ids": input_word_ids, "input_mask": input_mask,
                 "input_type_ids": input_type_ids}, spec.sequence_length)),
            input_signature=[tf.TensorSpec([None, None], tf.int32, name) for name in TEXT_IDS])
        example_features = {name: tf.io.FixedLenFeature([], tf.string, default_value="")
                            for name in text_names}
        self.serve_examples = _signature(
            lambda examples: from_text(*[
                tf.io.parse_example(_checked(examples, [None]), example_features)[name]
                for name in text_names]),
            input_signature=[tf.TensorSpec([None], tf.string, "examples")])

    def signatures(self):
        """{signature name: concrete function} for tf.saved_model.save."""
        return {name: getattr(self, name)
                for name in ("serving_default", "serve_ids", "serve_examples")}


def _checked(tensor, shape):
    """`tensor`, or TensorFlow's error naming it when its shape does not fit
    (a signature's own shape is not enforced when it is called)."""
    return tf.ensure_shape(tensor, shape, name=None)


def valid_utf8(texts):
    """`texts` with each invalid UTF-8 sequence replaced by U+FFFD, as Python's
    bytes.decode(errors="replace") reads it: served text is always valid
    UTF-8. Without it the tokenizers met the raw bytes (WordPiece made [UNK]
    of them, where BERT drops a U+FFFD), and a question-answering answer did
    not match its character offsets (these count a replaced sequence as one
    character; the answer's substring skipped stray continuation bytes)."""
    return tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")


def _checked_ids(features, max_length, rank=2):
    """The three id tensors: each [batch, seq] ([batch, choices, seq] at rank
    3), all of one shape, at most the exported sequence length."""
    ids = features["input_word_ids"]
    checks = [tf.debugging.assert_equal(tf.shape(features[name]), tf.shape(ids),
                                        message=f"{name} must have input_word_ids' shape")
              for name in TEXT_IDS[1:]]
    checks.append(tf.debugging.assert_less_equal(
        tf.shape(ids)[-1], max_length,
        message=f"at most {max_length} positions (the exported sequence length)"))
    with tf.control_dependencies(checks):
        return {name: tf.identity(_checked(features[name], [None] * rank))
                for name in TEXT_IDS}


def _model_caller(model):
    """features -> the model's outputs, in inference mode, feeding it only the
    inputs it has (a closure: the module must not track the model)."""
    input_names = list(model.input) if isinstance(model.input, dict) else None

    def call(features):
        if input_names is None:
            return model(features["images"], training=False)
        return model({name: features[name] for name in input_names}, training=False)

    return call
