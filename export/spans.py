"""Question answering served as the task decodes it (serving kind "span").

Raw strings (`text`: the question, `text_b`: the context) -> the context's
windows with the task's doc stride, every window of the batch scored in one
model call, the best span over an example's windows, the answer read from
the original context by character offsets (`kerasbert.text.windows`, the
functions the question-answering task trains and evaluates with).

Outputs per question: `answer` (the context's own characters, "" for no
answer), `answer_char_start`, `answer_char_end` (int64 [start, end) in
characters, -1 for no answer), `score` (the span's start + end logit) and
`null_score` (the no-answer score, start_logit[0] + end_logit[0], lowest
over the windows).

`serve_ids` takes one packed window and returns its logits and its best
span's token positions (`answer_start`, `answer_end`, -1 for none) and score.
"""

import tensorflow as tf

from kerasbert.text import windows


def answer_questions(spec, call_model, tokenizer, questions, contexts):
    """questions, contexts [batch] strings -> the named outputs above."""
    check = tf.debugging.assert_equal(
        tf.shape(questions), tf.shape(contexts),
        message="text (the questions) and text_b (their contexts) need one context per question")
    with tf.control_dependencies([check]):
        contexts = tf.identity(contexts)
    context_ids, spans = windows.context_tokens(tokenizer, contexts)
    packed = windows.pack_windows(
        tokenizer.tokenize(questions), context_ids, spec.sequence_length, spec.doc_stride,
        spec.max_query_length, tokenizer.vocabulary,
        tokenizer.pair_separators)
    outputs = call_model({name: packed[name] for name in
                          ("input_word_ids", "input_mask", "input_type_ids")})
    return windows.best_answers(
        packed, outputs["start_logits"], outputs["end_logits"], spans, contexts,
        spec.n_best_size, spec.max_answer_length, spec.version_2, spec.null_score_threshold)


def window_outputs(spec, outputs, features):
    """One packed window per row (serve_ids) -> logits and its best span."""
    start = tf.cast(outputs["start_logits"], tf.float32)
    end = tf.cast(outputs["end_logits"], tf.float32)
    context = tf.logical_and(tf.equal(features["input_type_ids"], 1),
                             tf.equal(features["input_mask"], 1))
    positions = tf.range(tf.shape(start)[1])
    # The second segment without its closing separator.
    context_start = tf.reduce_min(tf.where(context, positions[None], tf.shape(start)[1]),
                                  axis=1)
    context_length = tf.maximum(
        tf.reduce_sum(tf.cast(context, tf.int32), axis=1) - 1, 0)
    score, first, last = windows.best_window_spans(
        start, end, context_start, context_length, spec.n_best_size, spec.max_answer_length)
    found = score > windows.NO_SCORE
    return {"start_logits": start, "end_logits": end,
            "answer_start": tf.where(found, first, -1), "answer_end": tf.where(found, last, -1),
            "score": score}
