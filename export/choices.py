"""Multiple choice (the "choice" kind): a text and its candidate choices in,
the chosen choice out.

The multiple-choice task packs each (text, choice) pair as
`[CLS] text [SEP] choice [SEP]`, so its model takes [batch, choices, seq]
ids and returns one score per pair, logits [batch, choices].
`pack_choices` is that packing, used by the task's tf.data pipeline and by
these signatures alike, so a server packs exactly as training did.

  serving_default  text [b] string, choices [b, n] string -> probabilities
                   [b, n], label [b] int32, label_text [b] string (the
                   chosen choice), logits [b, n]
  serve_ids        input_word_ids, input_mask, input_type_ids int32
                   [b, n, seq] -> probabilities, label, logits
  serve_examples   examples [b]: tf.Examples with a `text` bytes feature and
                   a `choices` bytes_list, one value per choice

An empty choice ("") is no choice: probability 0, never the label. A batch
can so mix examples with different numbers of choices: serve_examples pads
the shorter `choices` lists with "", and a client can do the same.
"""

import tensorflow as tf

from export.signatures import TEXT_IDS, _checked, _checked_ids, _signature, valid_utf8

_SHORT, _LONG = "a short choice", "a long choice " * 100


def pack_choices(preprocessor, texts, choices):
    """texts [b] and choices [b, n] strings -> the three id tensors [b, n, seq]:
    every choice packed after its text (each text repeated n times)."""
    count = tf.shape(choices)[1]
    checks = [tf.debugging.assert_equal(
        tf.shape(choices)[0], tf.shape(texts)[0],
        message="choices must hold one row of choices per text: [batch, choices]")]
    with tf.control_dependencies(checks):
        packed = preprocessor(tf.repeat(texts, count), tf.reshape(choices, [-1]))
    return {name: tf.reshape(value, [-1, count, tf.shape(value)[1]])
            for name, value in packed.items()}


def choice_outputs(logits, choices=None):
    """The model's logits [b, n] -> logits, probabilities over the choices,
    label (int32) and, given the choice strings, label_text."""
    checks = [tf.debugging.assert_positive(
        tf.shape(logits)[1], message="every example needs at least one choice")]
    with tf.control_dependencies(checks):
        logits = tf.cast(logits, tf.float32)
    scores = logits
    if choices is not None:  # "" pads a shorter list of choices: never chosen
        scores = tf.where(tf.not_equal(choices, ""), logits, logits.dtype.min)
    probabilities = tf.nn.softmax(scores)
    label = tf.argmax(scores, axis=-1, output_type=tf.int32)
    result = {"logits": logits, "probabilities": probabilities, "label": label}
    if choices is not None:
        result["label_text"] = tf.gather(choices, label, batch_dims=1)
    return result


def parse_examples(examples):
    """Serialized tf.Examples -> (text [b], choices [b, n]): `text` a bytes
    feature ("" when absent), `choices` a bytes_list of any length, padded
    with "" to the longest of the batch."""
    features = tf.io.parse_example(examples, {
        "text": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "choices": tf.io.RaggedFeature(tf.string)})
    return features["text"], features["choices"].to_tensor(default_value="")


def choice_signatures(call_model, spec, preprocessor):
    """(serving_default, serve_ids, serve_examples): the concrete functions of a
    choice model's signatures."""

    def from_text(text, choices):
        text = valid_utf8(_checked(text, [None]))
        choices = valid_utf8(_checked(choices, [None, None]))
        return choice_outputs(call_model(pack_choices(preprocessor, text, choices))["logits"],
                              choices)

    def from_ids(input_word_ids, input_mask, input_type_ids):
        features = _checked_ids({"input_word_ids": input_word_ids, "input_mask": input_mask,
                                 "input_type_ids": input_type_ids}, spec.sequence_length,
                                rank=3)
        return choice_outputs(call_model(features)["logits"])

    serving_default = _signature(from_text, input_signature=[
        tf.TensorSpec([None], tf.string, "text"), tf.TensorSpec([None, None], tf.string,
                                                                "choices")])
    serve_ids = _signature(from_ids, input_signature=[
        tf.TensorSpec([None, None, None], tf.int32, name) for name in TEXT_IDS])
    serve_examples = _signature(
        lambda examples: from_text(*parse_examples(_checked(examples, [None]))),
        input_signature=[tf.TensorSpec([None], tf.string, "examples")])
    return serving_default, serve_ids, serve_examples


def sample_inputs(spec, signature, texts):
    """A warm-up request: `texts` with spec.num_choices choices each (among
    them an empty and an over-long one), or ids [1, num_choices, 4]."""
    count = max(spec.num_choices, 1)
    if signature == "serve_ids":
        ids = tf.constant([[[1, 1, 1, 0]] * count], tf.int32).numpy()
        return {"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
                "input_type_ids": 0 * ids}
    row = ([_SHORT, "", _LONG] * count)[:count]
    return {"text": tf.constant([text.encode() for text in texts]).numpy(),
            "choices": tf.constant([[choice.encode() for choice in row]] * len(texts)).numpy()}
