"""The distillation losses of DistilBERT, TinyBERT and DeiT, as plain functions.

Each takes teacher and student tensors (any float dtype; computed in
float32) and returns a float32 scalar. Where positions can be padding, a
`weights` / `mask` argument says which count: 1 for a real position, 0 for
padding. The reductions follow the reference implementations (Hugging
Face's `examples/research_projects/distillation/distiller.py` for
DistilBERT, huawei-noah's `TinyBERT/task_distill.py` for TinyBERT), so the
published loss weights mean the same here.
"""

import tensorflow as tf


def _float32(*tensors):
    return [tf.cast(t, tf.float32) for t in tensors]


def _weighted_mean(values, weights):
    """Mean of `values` over the positions whose weight is non-zero."""
    if weights is None:
        return tf.reduce_mean(values)
    weights = tf.cast(weights, tf.float32)
    return tf.reduce_sum(values * weights) / tf.maximum(tf.reduce_sum(weights), 1e-9)


def kl_divergence(teacher_logits, student_logits, temperature=2.0, weights=None):
    """KL(softmax(t/T) || softmax(s/T)) * T^2, averaged over positions.

    logits: [..., classes]; weights: [...] (the masked positions for
    DistilBERT's MLM logits). T^2 keeps the gradient scale independent of T
    (Hinton et al., 2015). DistilBERT's `KLDivLoss(reduction="batchmean")`
    over the selected positions is the same average.
    """
    teacher_logits, student_logits = _float32(teacher_logits, student_logits)
    teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    per_position = tf.reduce_sum(
        tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return _weighted_mean(per_position, weights) * temperature ** 2


def masked_lm_cross_entropy(labels, student_logits, weights=None):
    """The usual MLM loss: cross-entropy with the true tokens, averaged over
    the masked positions (weights 1) only."""
    (student_logits,) = _float32(student_logits)
    per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=student_logits)
    return _weighted_mean(per_position, weights)


def hard_label_cross_entropy(teacher_logits, student_logits):
    """DeiT's hard distillation: cross-entropy with the teacher's top class
    (its argmax, as if it were the label), averaged over examples."""
    (student_logits,) = _float32(student_logits)
    targets = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=targets, logits=student_logits))


def logits_mse(teacher_logits, student_logits, weights=None):
    """DistilBERT's optional alpha_mse term: squared error summed over the
    logits of a position, averaged over positions."""
    teacher_logits, student_logits = _float32(teacher_logits, student_logits)
    per_position = tf.reduce_sum(tf.square(student_logits - teacher_logits), axis=-1)
    return _weighted_mean(per_position, weights)


def cosine_embedding_loss(teacher_hidden, student_hidden, mask=None):
    """1 - cos(student, teacher) per token, averaged over the real tokens.

    hidden: [batch, seq, H]; mask: [batch, seq]. DistilBERT aligns the
    directions of the last hidden states this way (CosineEmbeddingLoss with
    target 1 over the non-padded tokens).
    """
    teacher_hidden, student_hidden = _float32(teacher_hidden, student_hidden)
    cosine = tf.reduce_sum(
        tf.math.l2_normalize(teacher_hidden, axis=-1, epsilon=1e-12)
        * tf.math.l2_normalize(student_hidden, axis=-1, epsilon=1e-12), axis=-1)
    return _weighted_mean(1.0 - cosine, mask)


def soft_cross_entropy(teacher_logits, student_logits, temperature=1.0, weights=None):
    """-softmax(t/T) . log_softmax(s/T), averaged over examples (or positions).

    TinyBERT's prediction-layer loss. Its reference code takes `.mean()`
    over classes too (a constant 1/classes factor, which Adam's scale
    invariance makes immaterial); here it is a true cross-entropy, so its
    value reads like the classification loss.
    """
    teacher_logits, student_logits = _float32(teacher_logits, student_logits)
    teacher_probs = tf.nn.softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    per_example = -tf.reduce_sum(teacher_probs * student_log_probs, axis=-1)
    return _weighted_mean(per_example, weights)


def mean_squared_error(teacher, student, weights=None):
    """Mean over every element (torch's MSELoss): TinyBERT's hidden-state loss
    and its prediction loss for regression tasks. With `weights`
    ([batch] or [batch, seq]), only the weighted rows count."""
    teacher, student = _float32(teacher, student)
    squared = tf.square(student - teacher)
    if weights is None:
        return tf.reduce_mean(squared)
    weights = tf.cast(weights, tf.float32)
    per_row = tf.reduce_mean(tf.reshape(squared, tf.concat([tf.shape(weights), [-1]], 0)), -1)
    return _weighted_mean(per_row, weights)


def attention_score_mse(teacher_scores, student_scores, mask):
    """MSE between attention scores [batch, heads, seq, seq] before softmax.

    Entries whose key is padding (mask [batch, seq] == 0) count as 0 on both
    sides, as TinyBERT's reference does (it zeroes scores that carry the
    -10000 padding bias); the mean is over every entry, zeros included.
    """
    teacher_scores, student_scores = _float32(teacher_scores, student_scores)
    keep = tf.cast(mask, tf.float32)[:, None, None, :]
    return tf.reduce_mean(tf.square((student_scores - teacher_scores) * keep))
