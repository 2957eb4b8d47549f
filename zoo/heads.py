"""A backbone together with the heads a checkpoint carries.

`zoo.load(path, with_head=True)` returns this: the backbone's outputs plus
`mlm_logits` [b, s, V] (decoder tied to the token embeddings),
`nsp_logits` or `sop_logits` [b, 2], `logits` [b, classes] of a
sequence- or image-classification head or [b, s, labels] of a token
classifier, `start_logits` / `end_logits` [b, s] of an extractive-QA
span head, and `rtd_logits` [b, s] of ELECTRA's replaced-token detection, as
the checkpoint has them: the output names of the tagging and
question-answering tasks' models, so a loaded head predicts as theirs do.
"""

import keras
from keras import ops

from kerasbert.layers import ClassificationHead, MaskedLMHead, SpanHead
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
            the classes (kept for export). "class_and_distillation" (DeiT)
            is two heads, on the class and the distillation token: outputs
            `cls_logits`, `distillation_logits` and `logits`, their average.
        token_classifier: None, or dict(num_classes=N, dropout=0.1,
            label_names=None): a dense to N logits on every token (Hugging
            Face *ForTokenClassification; the tagging task's head).
        span_head: None, or {} for extractive QA: a dense to start and end
            logits on every token (Hugging Face *ForQuestionAnswering's
            qa_outputs; the question-answering task's head). Padding is
            not masked here, as in Hugging Face.
        rtd_head: None, or dict(activation=...): ELECTRA's replaced-token
            detection (Hugging Face ElectraForPreTraining's
            discriminator_predictions): dense H -> H, the activation, dense
            to one logit per token, `rtd_logits` [b, s] (> 0: replaced).
    """

    wrapper_arguments = ("mlm_head", "sentence_head", "classifier", "token_classifier",
                         "span_head", "rtd_head")

    def __init__(self, backbone, mlm_head=None, sentence_head=None, classifier=None,
                 token_classifier=None, span_head=None, rtd_head=None, **kwargs):
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
        if classifier is not None and token_classifier is not None:
            raise ValueError("A model has a sequence or a token classifier, not both: both "
                             "would write `logits`.")
        if classifier is not None and classifier.get("input") == "class_and_distillation":
            outputs.update(self._classify_with_distillation(backbone_outputs, dtype,
                                                            **classifier))
        elif classifier is not None:
            outputs["logits"] = self._classify(backbone_outputs, dtype, **classifier)
        if token_classifier is not None:
            # Named as the tagging task's head, so its weights have the same paths.
            head = ClassificationHead(token_classifier["num_classes"],
                                      dropout=token_classifier.get("dropout", 0.1),
                                      dtype=dtype, name="tagging_head")
            outputs["logits"] = head(backbone_outputs["sequence_output"])
        if span_head is not None:
            start, end = SpanHead(dtype=dtype, name="span_head")(
                backbone_outputs["sequence_output"])
            outputs["start_logits"], outputs["end_logits"] = start, end
        if rtd_head is not None:
            outputs["rtd_logits"] = replaced_token_logits(backbone_outputs["sequence_output"],
                                                          dtype, **rtd_head)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype,
                         **kwargs)
        self.backbone = backbone
        self.mlm_head = mlm_head
        self.sentence_head = sentence_head
        self.classifier = classifier
        self.token_classifier = token_classifier
        self.span_head = span_head
        self.rtd_head = rtd_head

    @staticmethod
    def _classify(outputs, dtype, num_classes, input="pooled", pre_classifier=False,
                  dropout=0.1, label_names=None, pre_classifier_activation="relu"):
        if input == "pooled":
            x = outputs["pooled_output"]
        elif input == "first_token":
            x = outputs["sequence_output"][:, 0, :]
        else:
            raise ValueError("classifier input must be 'pooled', 'first_token' or "
                             f"'class_and_distillation', not {input!r}.")
        if pre_classifier:
            x = keras.layers.Dense(x.shape[-1], activation=pre_classifier_activation,
                                   kernel_initializer=default_initializer(),
                                   dtype=dtype, name="pre_classifier")(x)
        x = keras.layers.Dropout(dropout, dtype=dtype)(x)
        logits = keras.layers.Dense(num_classes, kernel_initializer=default_initializer(),
                                    dtype=dtype, name="classifier")(x)
        return ops.cast(logits, "float32")

    @staticmethod
    def _classify_with_distillation(outputs, dtype, num_classes, input, dropout=0.0,
                                    label_names=None):
        """DeiT's two heads (Hugging Face DeiTForImageClassificationWithTeacher):
        `classifier` on the class token and `distillation_classifier` on the
        distillation token, both after the final LN (no pooler); `logits` is
        their average, as DeiT predicts at inference."""
        if "distillation_output" not in outputs:
            raise ValueError("classifier input 'class_and_distillation' needs a backbone with "
                             "a distillation token (DeitBackbone).")
        heads = {}
        for output, layer, features in (
                ("cls_logits", "classifier", outputs["sequence_output"][:, 0, :]),
                ("distillation_logits", "distillation_classifier",
                 outputs["distillation_output"])):
            x = keras.layers.Dropout(dropout, dtype=dtype)(features)
            logits = keras.layers.Dense(num_classes, kernel_initializer=default_initializer(),
                                        dtype=dtype, name=layer)(x)
            heads[output] = ops.cast(logits, "float32")
        heads["logits"] = (heads["cls_logits"] + heads["distillation_logits"]) / 2
        return heads


def replaced_token_logits(sequence_output, dtype, activation="gelu"):
    """ELECTRA's discriminator head on every token: [b, s, H] -> float32 [b, s].

    A ClassificationHead to one class with a hidden layer is exactly
    ElectraDiscriminatorPredictions: dense, activation, dense_prediction, no
    dropout. (ELECTRA pretraining trains its discriminator as a
    BackboneWithHeads with this head, so what it saves loads as a checkpoint.)
    """
    hidden_size = sequence_output.shape[-1]
    head = ClassificationHead(1, dropout=0.0, hidden_size=hidden_size, activation=activation,
                              dtype=dtype, name="rtd_head")
    return ops.squeeze(head(sequence_output), axis=-1)
