"""Encoded images -> ViT inputs, in the graph (the serving twin of tf.data's).

Decoding, resizing and normalizing follow tasks.image_classification
exactly: decode (JPEG, PNG, BMP, GIF first frame) to the model's channel
count, bilinear resize to its size, scale to [0, 1], then (x - mean) / std.
"""

import tensorflow as tf


def decode_image(image_bytes, height, width, channels, mean=0.5, std=0.5):
    """One encoded image (a scalar string) -> float32 [height, width, channels]."""
    image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
    image = tf.image.resize(image, (height, width)) / 255.0
    return (image - mean) / std


def decode_images(image_bytes, height, width, channels, mean=0.5, std=0.5):
    """Encoded images [batch] (string) -> float32 [batch, height, width, channels]."""
    return tf.map_fn(lambda one: decode_image(one, height, width, channels, mean, std),
                     image_bytes, fn_output_signature=tf.TensorSpec(
                         [height, width, channels], tf.float32))
