"""The tf.data pipeline every task shares: examples -> shuffled, resumable batches.

Training data is shuffled with a fixed seed and repeated, so the stream is
the same in every run; a resumed run skips the examples its checkpoint
already consumed (before batching and preprocessing, so skipping costs no
tokenization) and sees exactly the batches an uninterrupted run would.

Length bucketing (text fine-tuning, `Bucketing`): instead of padding every
batch to sequence_length, each batch is padded to the smallest of a few
bucket lengths (16, 32, 64, ... sequence_length) that holds its longest
example, and examples of similar length are batched together, so a real
length mix (most texts short) pays little for padding while XLA sees only
len(lengths) shapes. The shuffled stream is cut into windows of
`window * batch_size` examples; each window is tokenized once, its examples
are sorted by bucket (stably, so they stay in shuffled order within a
bucket), cut into `window` batches, and the batches' order is shuffled with
a stateless seed derived from (seed, window number). Every window yields
exactly `window` batches and nothing is dropped or repeated; only the few
batches on a bucket border are padded to the larger bucket.

Resume with bucketing: the batches of a window depend on all of its
examples, so skipping `start_step * batch_size` examples (as without
bucketing) would regroup the stream and give different batches. Instead the
stream is a pure function of the window number: a run from `start_step`
skips `start_step // window` whole windows as raw examples (no
tokenization, like the unbucketed skip), then tokenizes and groups the
window it resumes in and drops its first `start_step % window` batches
before they are packed. So batches k.. of a run from step k are exactly
batches k.. of a run from step 0, and the extra cost is tokenizing at most
one window.
"""

import dataclasses
from typing import Callable, Optional, Sequence

import tensorflow as tf


def make_dataset(columns, batch_size, training, map_fn, start_step=0, seed=0, bucketing=None):
    """Batches of map_fn(batch of columns).

    columns: {name: list or array} of equal length (one entry per example).
    training: shuffle (seeded), repeat forever, skip `start_step` batches.
    map_fn: batched columns -> (features, labels[, sample_weights]).
    bucketing: an optional `Bucketing`; used for training only (evaluation
        keeps map_fn's fixed padding and the examples' order).
    """
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if training:
        size = len(next(iter(columns.values())))
        dataset = dataset.shuffle(size, seed=seed, reshuffle_each_iteration=True).repeat()
        if bucketing is not None:
            return _bucketed(dataset, batch_size, bucketing, start_step, seed)
        dataset = dataset.skip(start_step * batch_size)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class Bucketing:
    """How to batch training examples by length (see the module docstring).

    lengths: bucket lengths, e.g. from `bucket_lengths`; the largest must
        hold every example.
    tokenize_fn: batched columns -> (tokenized, packed_lengths): any nest of
        tensors / ragged tensors with the examples on axis 0, and int32 [n],
        the width each example needs.
    pack_fn: (tokenized batch, width) -> (features, labels[, weights]) with
        features `width` wide (width: an int32 scalar tensor, a bucket length).
    window: batches grouped together; larger groups more tightly, and a
        resume tokenizes up to this many batches it does not train on.
    """

    lengths: Sequence[int]
    tokenize_fn: Callable
    pack_fn: Callable
    window: int = 64


def bucket_lengths(sequence_length, lengths=None, smallest=16):
    """Sorted bucket lengths ending at sequence_length.

    lengths None: powers of two from `smallest` below sequence_length, then
    sequence_length (128 -> [16, 32, 64, 128]; 100 -> [16, 32, 64, 100]).
    Given lengths are sorted and deduplicated, those over sequence_length
    dropped, and sequence_length appended if missing so every example fits.
    """
    if lengths is None:
        lengths, length = [], smallest
        while length < sequence_length:
            lengths.append(length)
            length *= 2
    lengths = sorted({int(n) for n in lengths if 0 < int(n) <= sequence_length})
    if not lengths or lengths[-1] != sequence_length:
        lengths.append(sequence_length)
    return lengths


def bucket_lengths_option(options, sequence_length) -> Optional[list]:
    """The bucket lengths a task's options ask for, or None (fixed padding).

    options.bucket_lengths: ints (see `bucket_lengths`); options.bucket: True
    for powers of two. (options.bucket_window, read by the tasks, sets
    `Bucketing.window`.)
    """
    if options.bucket_lengths:
        return bucket_lengths(sequence_length, list(options.bucket_lengths))
    if options.bucket:
        return bucket_lengths(sequence_length)
    return None


def _bucketed(dataset, batch_size, bucketing, start_step, seed):
    window = int(bucketing.window)
    if window < 1:
        raise ValueError(f"Bucketing window must be >= 1, got {window}.")
    lengths = tf.constant(sorted(int(n) for n in bucketing.lengths), tf.int32)
    first_window, batch_offset = divmod(start_step, window)

    def arrange(number, chunk):
        """A window of examples -> `window` batches grouped by bucket, in a seeded order."""
        tokenized, packed = bucketing.tokenize_fn(chunk)
        bucket = tf.minimum(tf.searchsorted(lengths, tf.cast(packed, tf.int32), side="left"),
                            tf.size(lengths) - 1)
        by_bucket = tf.reshape(tf.argsort(bucket, stable=True), [window, batch_size])
        order = tf.random.experimental.stateless_shuffle(
            tf.range(window), seed=tf.stack([tf.constant(seed or 0, tf.int64), number]))
        rows = tf.gather(by_bucket, order)
        widths = tf.gather(lengths, tf.reduce_max(tf.gather(bucket, rows), axis=1))
        flat = tf.reshape(rows, [-1])

        def split(value):
            value = tf.gather(value, flat)
            if isinstance(value, tf.RaggedTensor):
                return tf.RaggedTensor.from_uniform_row_length(value, batch_size)
            if value.shape[1:].is_fully_defined():
                return tf.reshape(value, [window, batch_size] + value.shape[1:].as_list())
            return tf.reshape(value, tf.concat([[window, batch_size], tf.shape(value)[1:]], 0))

        return tf.nest.map_structure(split, tokenized), widths

    dataset = dataset.skip(first_window * window * batch_size)  # raw examples: cheap
    dataset = dataset.batch(window * batch_size, drop_remainder=True)
    dataset = dataset.enumerate(start=first_window)
    dataset = dataset.map(arrange, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.unbatch().skip(batch_offset)  # before packing: only tokenization is spent
    dataset = dataset.map(bucketing.pack_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
