"""Extractive question answering's text side, in the graph: a context's
tokens and the characters each covers, question + context windows with a
doc stride, and the best answer over all windows, read back from the
original context.

The question-answering task builds its training windows and decodes its
predictions with these functions, and the export's span signature calls the
same ones on raw strings, so a served answer is the task's answer.

Context tokens: the context is split at whitespace (Python's `str.split`
whitespace) into words, each tokenized as it reads in running text
(`tokenizer.tokenize_words`; a word that opens its context as a text start,
`tokenizer.tokenize`). A word's pieces cover the characters they spell when
they spell the word exactly (after the tokenizer's normalization, and when
that keeps the word's length); otherwise ([UNK], accents stripped, byte-level
stand-ins for non-ASCII bytes) every piece covers the whole word, as
run_squad.py's word-level mapping does.

Windows: `[CLS] question [SEP] window [SEP]` (`<s> question </s></s> window
</s>` for fairseq pairs), the question cut to `max_query_length` tokens,
consecutive windows overlapping by `doc_stride` tokens (Hugging Face's
meaning of the stride).

Decoding: per window, the `n_best_size` best starts and ends make candidate
spans (start <= end, both in the context, at most `max_answer_length`
tokens, scored by start + end logit); an example takes its best candidate
over all windows (the first window on ties). SQuAD v2.0: the null score is
the lowest start_logit[0] + end_logit[0] over the example's windows, and the
answer is "" when null score - best span score > `null_score_threshold`.
"""

import functools

import tensorflow as tf
import tensorflow_text as tf_text

from kerasbert.text.sentencepiece import lower_utf8, python_whitespace

NO_SCORE = -3.0e38  # the score of "no possible span" (an empty context)
MOST_SPECIALS = 4  # <s> question </s></s> window </s>: fairseq pairs have the most


def default_doc_stride(sequence_length):
    """Overlap of consecutive windows when none is set: a third of the
    sequence, at most 128 (run_squad.py's and Hugging Face's 128 at 384)."""
    return min(128, sequence_length // 3)


def check_windowing(sequence_length, doc_stride, max_query_length):
    """Raises ValueError when a question of max_query_length tokens would
    leave a window no larger than doc_stride (it could never move on)."""
    smallest = sequence_length - max_query_length - MOST_SPECIALS
    if smallest > 0 and doc_stride >= smallest:
        raise ValueError(
            f"doc_stride={doc_stride} must be smaller than {smallest}, the context tokens a "
            f"window holds at sequence_length={sequence_length} after a question of "
            f"max_query_length={max_query_length}: lower --doc_stride (default: "
            f"{default_doc_stride(sequence_length)} here) or --max_query_length, or raise "
            "--sequence_length.")


def context_words(contexts):
    """contexts [batch] -> (words [batch, (words)], first character of each
    word [batch, (words)] int64, in characters (code points))."""
    # tensorflow-text's regex_split ends a string at a NUL byte: split a copy
    # with \x01 (one byte, no whitespace either) for NUL, read the words from
    # the contexts themselves.
    _, byte_starts, byte_ends = tf_text.regex_split_with_offsets(
        tf.strings.regex_replace(contexts, "\x00", "\x01"), f"[{python_whitespace()}]+")
    words = byte_starts.with_flat_values(tf.strings.substr(
        tf.gather(contexts, byte_starts.value_rowids()), byte_starts.flat_values,
        byte_ends.flat_values - byte_starts.flat_values))
    _, char_bytes = tf.strings.unicode_decode_with_offsets(contexts, "UTF-8")
    # A word's character index: how many characters start before its first byte.
    largest = tf.int64.max
    starts = tf.searchsorted(char_bytes.to_tensor(default_value=largest),
                             byte_starts.to_tensor(default_value=largest), side="left",
                             out_type=tf.int64)
    return words, tf.RaggedTensor.from_tensor(starts, lengths=byte_starts.row_lengths())


def _surface_tables(vocabulary):
    """string [vocab]: the text each token spells ("##ing" -> "ing"); bool
    [vocab]: special tokens (they spell nothing)."""
    surfaces, special = _surfaces(vocabulary)
    return tf.constant(surfaces), tf.constant(special)


@functools.lru_cache(maxsize=8)  # per vocabulary object: SQuAD's features come in chunks
def _surfaces(vocabulary):
    surfaces = []
    for token in vocabulary.tokens:
        for prefix in (vocabulary.continuation_prefix, vocabulary.word_prefix):
            if prefix and token.startswith(prefix):
                token = token[len(prefix):]
        surfaces.append(token)
    special = [False] * vocabulary.size
    for index in vocabulary.special_ids:
        special[index] = True
        surfaces[index] = ""
    return surfaces, special


def _normalized(tokenizer, words):
    """Words as the tokenizer reads them before splitting into pieces."""
    if hasattr(tokenizer, "normalize"):
        return tokenizer.normalize(words)
    if getattr(tokenizer, "lower_case", False):
        return lower_utf8(words)
    return words


def context_tokens(tokenizer, contexts):
    """contexts [batch] -> (ids int32 [batch, (tokens)], character spans
    int64 [batch, (tokens), 2]: each token's [start, end) in its context)."""
    contexts = tf.convert_to_tensor(contexts, tf.string)
    words, word_starts = context_words(contexts)
    flat = words.flat_values
    count = tf.shape(flat, out_type=tf.int64)[0]
    # A word at character 0 opens its context: it reads as a text start.
    pieces = tf.cast(tokenizer.tokenize_words(
        flat, text_start=tf.equal(word_starts.flat_values, 0)), tf.int32)

    # Flat over all pieces (ragged elementwise ops are slow to trace).
    flat_pieces = pieces.flat_values
    word_of_piece = pieces.value_rowids()
    surface_table, special_table = _surface_tables(tokenizer.vocabulary)
    surfaces = tf.gather(surface_table, flat_pieces)
    lengths = tf.cast(tf.strings.length(surfaces, unit="UTF8_CHAR"), tf.int64)
    word_length = tf.cast(tf.strings.length(flat, unit="UTF8_CHAR"), tf.int64)
    normalized = tf.strings.regex_replace(_normalized(tokenizer, flat), " ", "")  # CJK spacing
    has_special = tf.math.unsorted_segment_max(
        tf.cast(tf.gather(special_table, flat_pieces), tf.int32), word_of_piece, count)
    spelled = (tf.equal(tf.strings.unsorted_segment_join(surfaces, word_of_piece, count),
                        normalized)
               & tf.equal(tf.cast(tf.strings.length(normalized, unit="UTF8_CHAR"), tf.int64),
                          word_length)
               & (has_special <= 0))
    # Each piece's end in its word: lengths summed up to it, within its word.
    ends = tf.cumsum(lengths)
    ends -= tf.gather(tf.concat([[0], ends], 0), tf.gather(pieces.row_starts(), word_of_piece))
    word_start = tf.gather(word_starts.flat_values, word_of_piece)
    exact = tf.gather(spelled, word_of_piece)
    span_start = tf.where(exact, word_start + ends - lengths, word_start)
    span_end = tf.where(exact, word_start + ends,
                        word_start + tf.gather(word_length, word_of_piece))
    spans = tf.stack([span_start, span_end], axis=-1)
    # Words -> contexts: the pieces of a context's words, in order.
    ids = words.with_flat_values(pieces).merge_dims(1, 2)
    return ids, ids.with_flat_values(spans)


def pack_windows(question_ids, context_ids, sequence_length, doc_stride, max_query_length,
                 vocabulary, pair_separators=1):
    """Questions and contexts (ragged ids [batch, (tokens)]) -> windows.

    Returns a dict of [windows]-long tensors: the model inputs
    `input_word_ids`, `input_mask`, `input_type_ids` int32 [windows,
    sequence_length]; `example_index` (the example of each window),
    `context_start` (sequence position of its first context token),
    `context_length` (its context tokens) and `doc_start` (that first token's
    index among the example's context tokens), int32.
    """
    cls_id, sep_id, pad_id = (vocabulary.id_of(role) for role in ("cls", "sep", "pad"))
    question_ids = tf.cast(question_ids[:, :max_query_length], tf.int32)
    context_ids = tf.cast(context_ids, tf.int32)
    question_length = tf.cast(question_ids.row_lengths(), tf.int32)
    tokens = tf.cast(context_ids.row_lengths(), tf.int32)
    window = sequence_length - question_length - 2 - pair_separators
    step = window - doc_stride
    checks = [
        tf.debugging.assert_positive(
            window, message=f"sequence_length={sequence_length} leaves no room for the "
            f"context after a question of up to max_query_length={max_query_length} tokens: "
            "raise sequence_length or lower max_query_length."),
        tf.debugging.assert_equal(
            tf.logical_or(tokens <= window, step > 0), True,
            message=f"doc_stride={doc_stride} must be smaller than the context tokens a "
            "window holds: lower doc_stride or raise sequence_length."),
    ]
    with tf.control_dependencies(checks):
        count = tf.where(tokens > window,
                         1 + (tokens - window + tf.maximum(step, 1) - 1) // tf.maximum(step, 1),
                         1)
    example_index = tf.repeat(tf.range(tf.shape(count)[0]), count)
    window_number = tf.ragged.range(count).flat_values
    doc_start = window_number * tf.gather(step, example_index)
    doc_end = tf.minimum(doc_start + tf.gather(window, example_index),
                         tf.gather(tokens, example_index))
    base = tf.gather(tf.cast(context_ids.row_starts(), tf.int32), example_index)
    doc = tf.gather(context_ids.flat_values, tf.ragged.range(base + doc_start, base + doc_end))
    windows = tf.shape(example_index)[0]

    def column(value, width):
        return tf.RaggedTensor.from_tensor(tf.fill([windows, width], value))

    packed = tf.concat([column(cls_id, 1), tf.gather(question_ids, example_index),
                        column(sep_id, pair_separators), doc, column(sep_id, 1)], axis=1)
    shape = [None, sequence_length]
    word_ids = packed.to_tensor(default_value=pad_id, shape=shape)
    mask = tf.ones_like(packed).to_tensor(shape=shape)
    context_start = tf.gather(question_length, example_index) + 1 + pair_separators
    positions = tf.range(sequence_length)[None, :]
    type_ids = tf.cast(tf.logical_and(positions >= context_start[:, None], mask > 0), tf.int32)
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids,
            "example_index": example_index, "context_start": context_start,
            "context_length": doc_end - doc_start, "doc_start": doc_start}


def best_window_spans(start_logits, end_logits, context_start, context_length,
                      n_best_size=20, max_answer_length=30):
    """Each window's best span from its n-best starts and ends.

    Returns (score float32 [windows], NO_SCORE where no candidate is valid;
    first, last int32 [windows], sequence positions).
    """
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    best = tf.minimum(n_best_size, tf.shape(start_logits)[1])
    # top_k lists equal logits lowest position first, as a stable sort does.
    first = tf.math.top_k(start_logits, best).indices[:, :, None]
    last = tf.math.top_k(end_logits, best).indices[:, None, :]
    low = context_start[:, None, None]
    high = low + context_length[:, None, None]
    valid = ((first >= low) & (last >= first) & (last < high)
             & (last - first < max_answer_length))
    scores = (tf.gather(start_logits, first[:, :, 0], batch_dims=1)[:, :, None]
              + tf.gather(end_logits, last[:, 0, :], batch_dims=1)[:, None, :])
    scores = tf.reshape(tf.where(valid, scores, NO_SCORE), [tf.shape(scores)[0], -1])
    choice = tf.argmax(scores, axis=-1, output_type=tf.int32)
    score = tf.gather(scores, choice, batch_dims=1)
    return (score, tf.gather(first[:, :, 0], choice // best, batch_dims=1),
            tf.gather(last[:, 0, :], choice % best, batch_dims=1))


def best_answers(windows, start_logits, end_logits, spans, contexts, n_best_size=20,
                 max_answer_length=30, version_2=False, null_score_threshold=0.0):
    """Window logits [windows, seq] -> each example's answer.

    windows: `pack_windows`' bookkeeping (example_index, context_start,
    context_length, doc_start); spans: `context_tokens`' character spans;
    contexts [batch]: the original strings.
    Returns `answer` (the context's own characters, "" for none),
    `answer_char_start` and `answer_char_end` (int64 [start, end) in
    characters, -1 for none), `score` (the best span's start + end logit)
    and `null_score` (the lowest start_logit[0] + end_logit[0]), [batch].
    """
    contexts = tf.convert_to_tensor(contexts, tf.string)
    examples = tf.shape(contexts)[0]
    example_index = windows["example_index"]
    score, first, last = best_window_spans(
        start_logits, end_logits, windows["context_start"], windows["context_length"],
        n_best_size, max_answer_length)
    best = tf.math.unsorted_segment_max(score, example_index, examples)
    # The first window holding the example's best score.
    row = tf.range(tf.shape(score)[0])
    chosen = tf.math.unsorted_segment_min(
        tf.where(tf.equal(score, tf.gather(best, example_index)), row, tf.int32.max),
        example_index, examples)
    chosen = tf.minimum(chosen, tf.maximum(tf.shape(score)[0] - 1, 0))
    null = tf.math.unsorted_segment_min(
        tf.cast(start_logits[:, 0], tf.float32) + tf.cast(end_logits[:, 0], tf.float32),
        example_index, examples)
    answered = best > NO_SCORE
    if version_2:
        answered = tf.logical_and(answered, null - best <= null_score_threshold)
    shift = tf.gather(windows["doc_start"] - windows["context_start"], chosen)
    base = tf.cast(spans.row_starts(), tf.int32)
    # A last row that examples without an answer read (every context may be empty).
    flat_spans = tf.concat([tf.cast(spans.flat_values, tf.int64), [[-1, -1]]], 0)
    last_row = tf.shape(flat_spans)[0] - 1

    def span_of(position):
        index = base + tf.gather(position, chosen) + shift
        return tf.gather(flat_spans, tf.where(answered, tf.clip_by_value(index, 0, last_row),
                                              last_row))

    char_start = span_of(first)[:, 0]
    char_end = span_of(last)[:, 1]
    answer = tf.where(answered, tf.strings.substr(
        contexts, tf.maximum(char_start, 0), tf.maximum(char_end - char_start, 0),
        unit="UTF8_CHAR"), "")
    return {"answer": answer, "answer_char_start": char_start, "answer_char_end": char_end,
            "score": best, "null_score": null}
