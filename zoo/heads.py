"""A backbone together with the heads a checkpoint carries.

`zoo.load(path, with_head=True)` returns this: the backbone's outputs plus
`mlm_logits` [b, s, V] (decoder tied to the token embeddings),
`nsp_logits` or `sop_logits` [b, 2], and `logits` [b, classes] of a
sequence- or image-classification head, as the checkpoint has them.
"""

import keras
from keras import ops

from kerasbert.layers import MaskedLMHead
from kerasbert.layers.initializers import default_initializer
from zoo.backbone import Backbone, WrapsBackbone


@keras.saving.register_keras_serializable(package="zoo")
class BackboneWithHeads(WrapsBackbone, Backbone):
    """Backbone + optional MLM, sentence-pair and classification heads.

    Args:
        backbone: a zoo backbone.
        mlm_head: None, or dict(activation=..., layer_norm_epsilon=...).
        sentence_head: None, "nsp" (BERT next sentence) or "sop" (ALBERT
            sentence order): a dense layer to 2 logits on `pooled_output`.
        classifier: None, or dict(num_classes=N, input="pooled" or
            "first_token", pre_classifier=False, dropout=0.1).
            "pooled" reads `pooled_output` (BERT, ALBERT); "first_token"
            reads `sequence_output[:, 0]` (DistilBERT, ViT, RoBERTa).
            `pre_classifier` is a dense before it with
            `pre_classifier_activation` ("relu": DistilBERT's; "tanh":
            RoBERTa's classification head). `label_names`, if given, names
            the classes (kept for export).
    """

    wrapper_arguments = ("mlm_head", "sentence_head", "classifier")

    def __init__(self, backbone, mlm_head=None, sentence_head=None, classifier=None,
                 **kwargs):
        inputs = backbone.input
        backbone_outputs = backbone(inputs)
        outputs = dict(backbone_outputs)
        dtype = backbone.dtype_policy
        if mlm_head is not None:
            head = MaskedLMHead(backbone.token_embedding, dtype=dtype, name="mlm_head",
                                **mlm_head)
            outputs["mlm_logits"] = head(backbone_outputs["sequence_output"])
        if sentence_head is not None:
            if sentence_head not in ("nsp", "sop"):
                raise ValueError(f"sentence_head must be 'nsp' or 'sop', not {sentence_head!r}.")
            dense = keras.layers.Dense(2, kernel_initializer=default_initializer(),
                                       dtype=dtype, name=f"{sentence_head}_head")
            logits = dense(backbone_outputs["pooled_output"])
            outputs[f"{sentence_head}_logits"] = ops.cast(logits, "float32")
        if classifier is not None:
            outputs["logits"] = self._classify(backbone_outputs, dtype, **classifier)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype,
                         **kwargs)
        self.backbone = backbone
        self.mlm_head = mlm_head
        self.sentence_head = sentence_head
        self.classifier = classifier

    @staticmethod
    def _classify(outputs, dtype, num_classes, input="pooled", pre_classifier=False,
                  dropout=0.1, label_names=None, pre_classifier_activation="relu"):
        if input == "pooled":
            x = outputs["pooled_output"]
        elif input == "first_token":
            x = outputs["sequence_output"][:, 0, :]
        else:
            raise ValueError(f"classifier input must be 'pooled' or 'first_token', not {input!r}.")
        if pre_classifier:
            x = keras.layers.Dense(x.shape[-1], activation=pre_classifier_activation,
                                   kernel_initializer=default_initializer(),
                                   dtype=dtype, name="pre_classifier")(x)
        x = keras.layers.Dropout(dropout, dtype=dtype)(x)
        logits = keras.layers.Dense(num_classes, kernel_initializer=default_initializer(),
                                    dtype=dtype, name="classifier")(x)
        return ops.cast(logits, "float32")
