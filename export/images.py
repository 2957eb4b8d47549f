"""Encoded images -> ViT inputs, in the graph: what the image-classification
task's tf.data pipeline and the export's `image_bytes` signature both call,
so serving prepares images exactly as training did.

decode (JPEG, PNG, BMP, GIF first frame) to the model's channel count,
bilinear resize to its size, scale to [0, 1]; then (x - mean) / std.
"""

import tensorflow as tf


def decode_image(image_bytes, height, width, channels):
    """One encoded image (a scalar string) -> float32 [height, width, channels] in [0, 1]."""
    image = tf.io.decode_image(image_bytes, channels=channels, expand_animations=False)
    return tf.image.resize(image, (height, width)) / 255.0


def normalize(images, mean=0.5, std=0.5):
    """Pixels in [0, 1] -> the model's input scale."""
    return (images - mean) / std


def decode_images(image_bytes, height, width, channels, mean=0.5, std=0.5):
    """Encoded images [batch] (string) -> normalized float32 [batch, height, width, channels]."""
    images = tf.map_fn(lambda one: decode_image(one, height, width, channels), image_bytes,
                       fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32))
    return normalize(images, mean, std)
