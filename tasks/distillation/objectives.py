"""What a student learns from its teacher: the DistilBERT, TinyBERT and DeiT objectives.

An objective maps (teacher outputs, student outputs, features, labels,
sample weights, step) to named loss terms {name: (weight, value)}; the
`Distiller` sums weight * value. Outputs are `training_view`s:
{"task": the task head's outputs, "internals": the backbone's outputs}.
"""

import tensorflow as tf

from tasks.distillation import losses


class DistilBertObjective:
    """Sanh et al. (2019): on the masked positions' MLM logits,

        alpha_ce * KL(softmax(t/T) || softmax(s/T)) * T^2
        + alpha_mlm * MLM cross-entropy with the true tokens
        + alpha_cos * (1 - cos) between the last hidden states (real tokens)
        + alpha_mse * squared error of the logits (optional).

    Defaults are the published recipe's. Terms with weight 0 are skipped.
    """

    def __init__(self, temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0,
                 alpha_mse=0.0):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, not {temperature}.")
        self.temperature = float(temperature)
        weights = {"loss_ce": alpha_ce, "loss_mlm": alpha_mlm, "loss_cos": alpha_cos,
                   "loss_mse": alpha_mse}
        self.weights = {name: float(w) for name, w in weights.items() if w}
        if not self.weights:
            raise ValueError("Every DistilBERT loss weight is 0: nothing to learn.")

    @property
    def terms(self):
        return list(self.weights)

    def __call__(self, teacher, student, features, labels, sample_weights, step):
        teacher_logits = teacher["task"]["mlm_logits"]
        student_logits = student["task"]["mlm_logits"]
        masked = sample_weights["mlm_logits"]
        values = {}
        if "loss_ce" in self.weights:
            values["loss_ce"] = losses.kl_divergence(teacher_logits, student_logits,
                                                     self.temperature, masked)
        if "loss_mlm" in self.weights:
            values["loss_mlm"] = losses.masked_lm_cross_entropy(labels["mlm_logits"],
                                                                student_logits, masked)
        if "loss_cos" in self.weights:
            values["loss_cos"] = losses.cosine_embedding_loss(
                teacher["internals"]["sequence_output"],
                student["internals"]["sequence_output"], features["input_mask"])
        if "loss_mse" in self.weights:
            values["loss_mse"] = losses.logits_mse(teacher_logits, student_logits, masked)
        return {name: (self.weights[name], values[name]) for name in self.weights}


# The prediction-layer loss per kind of task output.
PREDICTION_KINDS = ("softmax", "sigmoid", "regression")


class TinyBertObjective:
    """Jiao et al. (2019). Intermediate layers:

        sum over m of MSE(fit_dense(student hidden m), teacher hidden g(m))
        (m = 0 is the embedding output, g(0) = 0)
        + sum over m >= 1 of MSE(student scores m, teacher scores g(m))
        (pre-softmax, padded keys zeroed)

    Prediction layer: soft cross-entropy -softmax(t/T) . log_softmax(s/T)
    ("softmax"; per token for taggers), MSE ("regression") or binary
    cross-entropy with the teacher's probabilities ("sigmoid", multi-label).

    layer_map: teacher layer (1-based) for each student layer
        (students.uniform_layer_map).
    stage: "intermediate", "prediction", or "both": intermediate losses for
        the first `switch_step` training steps, then the prediction loss.
    per_token: the task output has a position axis (tagging), weighted by
        the input mask.
    """

    def __init__(self, layer_map, stage="intermediate", prediction_kind="softmax",
                 temperature=1.0, switch_step=0, per_token=False, output="logits"):
        if stage not in ("intermediate", "prediction", "both"):
            raise ValueError(f"stage must be 'intermediate', 'prediction' or 'both', not "
                             f"{stage!r}.")
        if prediction_kind not in PREDICTION_KINDS:
            raise ValueError(f"prediction_kind must be one of {PREDICTION_KINDS}.")
        self.layer_map = [0] + list(layer_map)
        self.stage = stage
        self.prediction_kind = prediction_kind
        self.temperature = float(temperature)
        self.switch_step = int(switch_step)
        self.per_token = per_token
        self.output = output

    @property
    def terms(self):
        terms = []
        if self.stage in ("intermediate", "both"):
            terms += ["attention_loss", "hidden_loss"]
        if self.stage in ("prediction", "both"):
            terms += ["prediction_loss"]
        return terms

    def intermediate_terms(self, teacher, student, mask):
        teacher_hidden = teacher["encoder_outputs"]
        student_hidden = student.get("fit_dense_outputs", student["encoder_outputs"])
        hidden = tf.add_n([losses.mean_squared_error(teacher_hidden[t], student_hidden[s])
                           for s, t in enumerate(self.layer_map)])
        attention = tf.add_n([
            losses.attention_score_mse(teacher["attention_scores"][t - 1],
                                       student["attention_scores"][s - 1], mask)
            for s, t in enumerate(self.layer_map) if s > 0])
        return attention, hidden

    def prediction_term(self, teacher_logits, student_logits, mask):
        weights = mask if self.per_token else None
        if self.prediction_kind == "regression":
            return losses.mean_squared_error(teacher_logits, student_logits, weights)
        if self.prediction_kind == "sigmoid":
            targets = tf.sigmoid(tf.cast(teacher_logits, tf.float32) / self.temperature)
            per_label = tf.nn.sigmoid_cross_entropy_with_logits(
                labels=targets, logits=tf.cast(student_logits, tf.float32) / self.temperature)
            return tf.reduce_mean(per_label)
        return losses.soft_cross_entropy(teacher_logits, student_logits, self.temperature,
                                         weights)

    def __call__(self, teacher, student, features, labels, sample_weights, step):
        mask = features["input_mask"]
        intermediate_weight = prediction_weight = 1.0
        if self.stage == "both":
            first_stage = tf.cast(tf.cast(step, tf.int64) < self.switch_step, tf.float32)
            intermediate_weight, prediction_weight = first_stage, 1.0 - first_stage
        terms = {}
        if self.stage in ("intermediate", "both"):
            attention, hidden = self.intermediate_terms(teacher["internals"],
                                                        student["internals"], mask)
            terms["attention_loss"] = (intermediate_weight, attention)
            terms["hidden_loss"] = (intermediate_weight, hidden)
        if self.stage in ("prediction", "both"):
            terms["prediction_loss"] = (prediction_weight, self.prediction_term(
                teacher["task"][self.output], student["task"][self.output], mask))
        return terms


def check_compatible(teacher_backbone, student_backbone, layer_map, needs_attention=True,
                     needs_hidden=True):
    """Clear errors for a student that cannot learn from this teacher's layers
    (prediction-only distillation needs neither hidden states nor attention)."""
    if not needs_hidden:
        return
    student_width = getattr(student_backbone, "teacher_hidden_size", None) or \
        student_backbone.hidden_size
    if student_width != teacher_backbone.hidden_size:
        raise ValueError(
            f"The student's hidden states are {student_backbone.hidden_size} wide, the "
            f"teacher's {teacher_backbone.hidden_size}: use a TinyBERT student (its fit_dense "
            f"projects to the teacher's width; --student=tinybert_4l_312d) or one as wide.")
    if needs_attention and student_backbone.num_heads != teacher_backbone.num_heads:
        raise ValueError(
            f"Attention distillation matches heads one to one: the student has "
            f"{student_backbone.num_heads} heads, the teacher {teacher_backbone.num_heads}. "
            "Build the student with the teacher's head count.")
    if max(layer_map) > teacher_backbone.num_layers:
        raise ValueError(f"The layer map {layer_map} goes past the teacher's "
                         f"{teacher_backbone.num_layers} layers.")


class DeitObjective:
    """Touvron et al. (2021): a student with two heads, one on the class
    token (`cls_logits`) and one on the distillation token
    (`distillation_logits`):

        (1 - w) * CE(cls_logits, true label) + w * D(distillation_logits, teacher)

    D is "hard" (cross-entropy with the teacher's top class; the paper's
    w = 0.5) or "soft" (KL(softmax(t/T) || softmax(s/T)) * T^2; the paper's
    T = 3 and w = 0.1). The teacher's output is its `logits`.
    """

    terms = ("class_loss", "distillation_loss")

    def __init__(self, distillation="hard", distillation_weight=0.5, temperature=3.0):
        if distillation not in ("hard", "soft"):
            raise ValueError(f"distillation is 'hard' or 'soft', not {distillation!r}.")
        if not 0.0 <= distillation_weight <= 1.0:
            raise ValueError(f"distillation_weight must be in [0, 1], got {distillation_weight}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, not {temperature}.")
        self.distillation = distillation
        self.distillation_weight = float(distillation_weight)
        self.temperature = float(temperature)

    def __call__(self, teacher, student, features, labels, sample_weights, step):
        teacher_logits = teacher["task"]["logits"]
        class_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32),
            logits=tf.cast(student["task"]["cls_logits"], tf.float32)))
        distillation_logits = student["task"]["distillation_logits"]
        if self.distillation == "hard":
            distillation_loss = losses.hard_label_cross_entropy(teacher_logits,
                                                                distillation_logits)
        else:
            distillation_loss = losses.kl_divergence(teacher_logits, distillation_logits,
                                                     self.temperature)
        return {"class_loss": (1.0 - self.distillation_weight, class_loss),
                "distillation_loss": (self.distillation_weight, distillation_loss)}
