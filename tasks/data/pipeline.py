"""The tf.data pipeline every task shares: examples -> shuffled, resumable batches.

Training data is shuffled with a fixed seed and repeated, so the stream is
the same in every run; a resumed run skips the examples its checkpoint
already consumed (before batching and preprocessing, so skipping costs no
tokenization) and sees exactly the batches an uninterrupted run would.
"""

import tensorflow as tf


def make_dataset(columns, batch_size, training, map_fn, start_step=0, seed=0):
    """Batches of map_fn(batch of columns).

    columns: {name: list or array} of equal length (one entry per example).
    training: shuffle (seeded), repeat forever, skip `start_step` batches.
    map_fn: batched columns -> (features, labels[, sample_weights]).
    """
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if training:
        size = len(next(iter(columns.values())))
        dataset = dataset.shuffle(size, seed=seed, reshuffle_each_iteration=True).repeat()
        dataset = dataset.skip(start_step * batch_size)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
