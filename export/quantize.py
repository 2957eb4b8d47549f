"""int8 serving models: `export_model(..., quantize="int8")`, `--quantize=int8`.

What becomes int8, and what stays float32:
- every Dense layer of the Transformer blocks (query, key, value, attention
  output, the feed-forward pair): the kernel int8 with one scale per output
  channel (abs-max), its input quantized to int8 at run time with one scale
  per token (the abs-max of that token's row), so a text's outputs never
  depend on the other texts of its batch or on padding;
- the token embedding table: int8 with one scale per row (a gather, then a
  multiply);
- float32: layer norms, softmax and the two attention products (QK^T and
  probabilities x V), position and segment embeddings, the pooler and the
  task heads: little of the time, and where rounding would move decisions.

The weights are quantized by Keras' own `model.quantize("int8")` (the same
abs-max schemes). Its Dense forward is not used: it multiplies with
`tf.matmul` on int8 tensors, which TensorFlow runs on Eigen, slower than
float32 here (docs/export.md has the figures). TensorFlow's oneDNN kernel
`_QuantizedMatMul` (VNNI int8 dot products, weights reordered once and
cached) is 2.7x float32 on the same matmul here, so each quantized Dense
layer calls it instead. The kernel is part of TensorFlow's x86-64 builds with
oneDNN (the Linux pip packages); a SavedModel using it needs such a build
to serve (`check_kernel` says so before exporting).
"""

import gc

import keras
import tensorflow as tf
from tensorflow.python.framework import kernels, op_def_library

from kerasbert import keras_internals
from kerasbert.layers import (MaskedLMHead, SharedTextEmbeddings, TextEmbeddings,
                              TiedMaskedLMHead, TransformerBlock)
from kerasbert.layers.activations import EXACT_GELU

MODES = ("int8",)
KERNEL = "_QuantizedMatMul"
# Layers that read the token table directly: the table stays float32 beside them.
_TABLE_READERS = (MaskedLMHead, TiedMaskedLMHead, SharedTextEmbeddings)


def check_kernel():
    """Raises a RuntimeError when this TensorFlow has no oneDNN int8 matmul."""
    if not kernels.get_registered_kernels_for_op(KERNEL).kernel:
        raise RuntimeError(
            f"--quantize=int8 needs TensorFlow's oneDNN int8 matmul ({KERNEL}), which this "
            f"TensorFlow {tf.__version__} build lacks: export on (and serve with) an x86-64 "
            "TensorFlow built with oneDNN, such as the Linux pip packages, or export without "
            "--quantize.")


def int8_matmul(rows, kernel, kernel_scale, output_scale=1.0):
    """float32 [n, k] x int8 kernel [k, units] -> float32 [n, units].

    kernel_scale [units]: Keras' per-output-channel scale (kernel = round(w *
    scale)), applied by the kernel. Each row of `rows` is quantized with its
    own abs-max scale, applied after the kernel (which takes one input scale
    per call); `output_scale` multiplies the product in the same pass.
    """
    row_range = tf.maximum(tf.reduce_max(tf.abs(rows), axis=-1, keepdims=True), 1e-30)
    # |rows * 127 / range| <= 127: the cast cannot overflow.
    quantized = tf.cast(tf.round(rows * (127.0 / row_range)), tf.int8)
    weight_range = 127.0 / tf.cast(kernel_scale, tf.float32)
    inputs = [tf.bitcast(quantized, tf.qint8), tf.bitcast(kernel, tf.qint8),
              tf.zeros([kernel.shape[-1]]),
              # SCALED mode: scale = range / 127, so the int8 rows are read as
              # they are and output channel j is multiplied by its weight scale.
              tf.constant(-127.0), tf.constant(127.0), -weight_range, weight_range]
    # The kernel has no tf.raw_ops wrapper (its name starts with "_"); this is
    # what every generated wrapper calls.
    _, _, operation, _ = op_def_library._apply_op_helper(
        KERNEL, name="Int8MatMul", device_inputs=inputs, host_inputs=[],
        Tdevice_outputs=[tf.float32], Thost_outputs=[], T1=tf.qint8, T2=tf.qint8,
        Tbias=tf.float32, Tout=tf.float32, U=tf.float32, fused_ops=["BiasAdd", "Dequantize"],
        input_quant_mode="SCALED", output_quant_mode="SCALED", transpose_a=False,
        transpose_b=False, is_weight_const=True, is_bias_const=True, leakyrelu_alpha=0.2)
    return operation.outputs[0] * (row_range * (output_scale / 127.0))


# Graph mode always: the kernel has no eager wrapper, and in a SavedModel the
# function is inlined into each signature.
_int8_matmul = tf.function(int8_matmul)

# The feed-forward's exact GELU, 0.5 t (1 + erf(t / sqrt 2)), is five passes
# over [tokens, intermediate] in TensorFlow (oneDNN fuses it into float32
# matmuls, not into this int8 path): 6.3 ms on BERT-base's [1024, 3072]
# here, per layer. So the first layer
# scales its output by 1 / sqrt 2 in the rescaling it does anyway and
# returns u (1 + erf(u)) = sqrt 2 GELU(t), three passes (3.3 ms, same run);
# the second layer multiplies its product by 1 / sqrt 2 in its own
# rescaling.
_SQRT_HALF = 0.7071067811865476


def _int8_dense_call(layer, scaled_gelu=False, after_scaled_gelu=False):
    """The forward of a Dense `layer` after Keras' quantize("int8"), on oneDNN.

    scaled_gelu: return sqrt 2 x the exact GELU of the output (see above);
    after_scaled_gelu: the inputs are such an output."""

    def call(inputs, training=None):
        x = tf.cast(inputs, tf.float32)
        scale = _SQRT_HALF if scaled_gelu or after_scaled_gelu else 1.0
        y = _int8_matmul(tf.reshape(x, [-1, x.shape[-1]]), tf.convert_to_tensor(layer.kernel),
                         tf.convert_to_tensor(layer.kernel_scale), scale)
        if layer.bias is not None:
            y = y + tf.cast(layer.bias, tf.float32) * (_SQRT_HALF if scaled_gelu else 1.0)
        if scaled_gelu:
            y = y * (1.0 + tf.math.erf(y))
        y = tf.reshape(y, tf.concat([tf.shape(x)[:-1], [layer.units]], axis=0))
        y.set_shape(x.shape[:-1] + [layer.units])
        return tf.cast(layer.activation(y), layer.compute_dtype)

    return call


def _copy(model):
    """A model of the same configuration and weights (the caller's stays float32)."""
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    copy.set_weights(model.get_weights())
    return copy


def quantized_layers(model):
    """The layers `quantize_model` makes int8: every Dense layer inside a
    TransformerBlock, and each TextEmbeddings' token table unless a layer
    reads that table directly (a tied masked-LM head, shared embeddings)."""
    layers = keras_internals.sublayers(model)
    chosen = [dense for block in layers if isinstance(block, TransformerBlock)
              for dense in keras_internals.sublayers(block)
              if isinstance(dense, keras.layers.Dense)]
    if not any(isinstance(layer, _TABLE_READERS) for layer in layers):
        chosen += [layer.token_embedding for layer in layers if isinstance(layer, TextEmbeddings)]
    return list({id(layer): layer for layer in chosen}.values())  # shared blocks once


def quantize_model(model, mode="int8"):
    """A copy of `model` for int8 serving (see the module docstring); `model`
    itself is unchanged."""
    if mode not in MODES:
        raise ValueError(f"Unknown quantization {mode!r}; one of {MODES}.")
    check_kernel()
    quantized = _copy(model)
    layers = quantized_layers(quantized)
    if not layers:
        raise ValueError(f"{model.name} has no Transformer blocks to quantize; export it "
                         "without --quantize.")
    chosen = {id(layer) for layer in layers}
    # Keras runs a full gc.collect() for each float kernel it drops: ~0.5 s
    # each with TensorFlow's objects alive (6.2 s of bert_test_tiny's 13;
    # BERT-base drops 73). Frozen objects are skipped by the collector;
    # those made since are still seen.
    gc.freeze()
    try:
        quantized.quantize(mode, filters=lambda layer: id(layer) in chosen)
    finally:
        gc.unfreeze()
    # Keras calls `quantized_call` for a quantized layer (the Embedding keeps
    # Keras' own: a gather and a multiply).
    calls = {id(layer): _int8_dense_call(layer) for layer in layers
             if isinstance(layer, keras.layers.Dense)}
    for block in keras_internals.sublayers(quantized):
        if isinstance(block, TransformerBlock) and block.activation == EXACT_GELU:
            calls[id(block.intermediate)] = _int8_dense_call(block.intermediate,
                                                             scaled_gelu=True)
            calls[id(block.output_dense)] = _int8_dense_call(block.output_dense,
                                                             after_scaled_gelu=True)
            block.activation_fn = keras.activations.linear  # done in `intermediate`
    for layer in layers:
        if id(layer) in calls:
            layer.quantized_call = calls[id(layer)]
    # XLA has no kernel for oneDNN's int8 matmul: predict() runs a plain graph.
    quantized.jit_compile = False
    return quantized
