"""The encoder wiring BERT, ALBERT, DistilBERT and TinyBERT share.

Forward pass, top to bottom:
  input_word_ids, input_type_ids -> embeddings (token + segment + position,
  LN, dropout, optional E -> H projection) -> transformer (L blocks,
  attention masked by input_mask) -> sequence_output; pooler(first token)
  -> pooled_output.
"""

import keras

from kerasbert.layers import Pooler, TextEmbeddings, TransformerStack
from zoo.backbone import Backbone, block_parameters, dense_parameters

TEXT_INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


def text_inputs():
    """The three int32 [batch, seq] inputs, named as TF Hub BERT names them."""
    return {
        name: keras.Input(shape=(None,), dtype="int32", name=name)
        for name in TEXT_INPUT_NAMES
    }


class TextBackbone(Backbone):
    """Shared functional wiring; families subclass it with their defaults.

    Outputs (a dict):
        sequence_output: [batch, seq, H], the last layer.
        pooled_output: [batch, H], when the family has a pooler.
        encoder_outputs: every layer's output, embeddings first when
            `output_embeddings=True`.
        attention_scores, attention_probs: per layer, float32
            [batch, heads, seq, seq], when `return_attention_scores=True`
            (scores are QK^T/sqrt(d) before masking).
    """

    def __init__(
        self,
        *,
        vocab_size,
        num_layers,
        hidden_size,
        num_heads,
        intermediate_size,
        activation="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        max_sequence_length=512,
        type_vocab_size=2,
        embedding_size=None,
        num_groups=None,
        layer_norm_epsilon=1e-12,
        padding_id=None,
        use_pooler=True,
        output_embeddings=False,
        return_attention_scores=False,
        extra_outputs=None,
        dtype=None,
        **kwargs,
    ):
        inputs = text_inputs()
        embeddings = TextEmbeddings(
            vocab_size,
            hidden_size,
            max_sequence_length=max_sequence_length,
            type_vocab_size=type_vocab_size,
            embedding_size=embedding_size,
            layer_norm_epsilon=layer_norm_epsilon,
            dropout=dropout,
            padding_id=padding_id,
            dtype=dtype,
            name="embeddings",
        )
        transformer = TransformerStack(
            num_layers,
            num_groups=num_groups,
            num_heads=num_heads,
            intermediate_size=intermediate_size,
            activation=activation,
            dropout=dropout,
            attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="transformer",
        )
        x = embeddings(inputs["input_word_ids"], inputs["input_type_ids"])
        encoded = transformer(
            x,
            attention_mask=inputs["input_mask"],
            return_attention_scores=return_attention_scores,
        )
        hidden_states = encoded["hidden_states"]
        outputs = {
            "sequence_output": hidden_states[-1],
            "encoder_outputs": ([x] if output_embeddings else []) + hidden_states,
        }
        if use_pooler:
            pooler = Pooler(hidden_size, dtype=dtype, name="pooler")
            outputs["pooled_output"] = pooler(hidden_states[-1])
        if return_attention_scores:
            outputs["attention_scores"] = encoded["attention_scores"]
            outputs["attention_probs"] = encoded["attention_probs"]
        if extra_outputs is not None:
            outputs.update(extra_outputs(outputs))
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

    @property
    def token_embedding(self):
        """The token embedding layer (the MLM head's tied decoder)."""
        return self.get_layer("embeddings").token_embedding

    @staticmethod
    def vocabulary_arguments(vocabulary):
        """The constructor arguments a kerasbert.text Vocabulary decides, for a
        backbone trained from scratch on it."""
        return {"vocab_size": vocabulary.size}

    @staticmethod
    def text_parameters(
        vocab_size,
        num_layers,
        hidden_size,
        intermediate_size,
        max_sequence_length=512,
        type_vocab_size=2,
        embedding_size=None,
        num_groups=None,
        use_pooler=True,
    ):
        """Exact parameter count of the wiring above, without building it."""
        width = embedding_size or hidden_size
        count = (vocab_size + max_sequence_length + type_vocab_size) * width
        count += 2 * width  # embedding layer norm
        if embedding_size is not None:
            count += dense_parameters(width, hidden_size)
        count += (num_groups or num_layers) * block_parameters(hidden_size, intermediate_size)
        if use_pooler:
            count += dense_parameters(hidden_size, hidden_size)
        return count

