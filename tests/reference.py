"""Plain numpy forward passes, the ground truth the layers are tested on."""

import math

import numpy as np

_erf = np.vectorize(math.erf)


def gelu_exact(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def dense(x, layer):
    kernel, bias = (w.numpy() for w in layer.weights)
    return x @ kernel + bias


def attention(query, key_value, attention_layer, allowed=None):
    """softmax(QK^T/sqrt(d) masked) V for every head, then the output dense.

    `allowed` is boolean [batch, query, key] or None. Returns (output,
    scores, probabilities).
    """
    heads = attention_layer.num_heads
    q = dense(query, attention_layer.query)
    k = dense(key_value, attention_layer.key)
    v = dense(key_value, attention_layer.value)
    batch, q_len, hidden = q.shape
    size = hidden // heads

    def split(x):
        return x.reshape(batch, -1, heads, size).transpose(0, 2, 1, 3)

    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)
    masked = scores if allowed is None else np.where(allowed[:, None], scores, -np.inf)
    probabilities = softmax(masked)
    context = (probabilities @ v).transpose(0, 2, 1, 3).reshape(batch, q_len, hidden)
    return dense(context, attention_layer.output_dense), scores, probabilities


def transformer_block(x, block, allowed=None, gelu=gelu_exact):
    """One TransformerBlock, post-LN or pre-LN, at inference."""

    def norm(x, layer):
        gamma, beta = (w.numpy() for w in layer.weights)
        return layer_norm(x, gamma, beta, block.layer_norm_epsilon)

    def feed_forward(x):
        return dense(gelu(dense(x, block.intermediate)), block.output_dense)

    if block.norm_first:
        h = norm(x, block.attention_layer_norm)
        x = x + attention(h, h, block.attention, allowed)[0]
        return x + feed_forward(norm(x, block.output_layer_norm))
    x = norm(x + attention(x, x, block.attention, allowed)[0], block.attention_layer_norm)
    return norm(x + feed_forward(x), block.output_layer_norm)
