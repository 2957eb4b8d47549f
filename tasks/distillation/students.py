"""Students: a DistilBERT initialised from its teacher, TinyBERT layer maps.

DistilBERT (Sanh et al., 2019) starts from the teacher: same width, every
second layer, the token and position embeddings copied, no segment
embeddings and no pooler. TinyBERT (Jiao et al., 2019) students are
smaller in width and depth; `uniform_layer_map` says which teacher layer
each student layer learns from.
"""

import zoo
from zoo.text_backbone import TextBackbone

# Constructor arguments a DistilBERT student takes over from its teacher.
_SHARED_ARGUMENTS = ("vocab_size", "hidden_size", "num_heads", "intermediate_size",
                     "activation", "dropout", "attention_dropout", "max_sequence_length",
                     "layer_norm_epsilon")


def default_student_layers(teacher_layers, student_layers=None):
    """Teacher layers a DistilBERT student copies: `student_layers` of them
    (default half), evenly spread from the first to the last.

    For 12 teacher layers this is DistilBERT's [0, 2, 4, 7, 9, 11].
    """
    count = student_layers or max(1, teacher_layers // 2)
    if not 1 <= count <= teacher_layers:
        raise ValueError(f"A student of {count} layers cannot copy a {teacher_layers}-layer "
                         "teacher's layers.")
    if count == 1:
        return [0]
    return [round(i * (teacher_layers - 1) / (count - 1)) for i in range(count)]


def _check_copyable(teacher):
    if not isinstance(teacher, TextBackbone):
        raise ValueError(f"A DistilBERT student copies a text backbone's layers; the teacher "
                         f"is a {type(teacher).__name__}.")
    if getattr(teacher, "embedding_size", None) is not None or \
            getattr(teacher, "num_groups", None) not in (None, teacher.num_layers):
        raise ValueError(
            f"The teacher {teacher.name} has factorized embeddings or shared layers (ALBERT); "
            "a DistilBERT student copies per-layer weights of a BERT-shaped teacher. Distil "
            "it with --task=distill_tinybert_general / distill_tinybert_task instead.")


def distilbert_student(teacher, layers=None, **overrides):
    """A DistilBertBackbone initialised from the text backbone `teacher`.

    layers: teacher layer indices to copy, in order (default
        `default_student_layers`); student layer i is a copy of teacher
        layer layers[i].
    overrides: other DistilBertBackbone arguments (dtype, dropout,
        output_embeddings, return_attention_scores, ...).
    The token embedding, position embedding and embedding layer norm are
    copied; the teacher's segment embeddings and pooler are left out.
    """
    _check_copyable(teacher)
    layers = list(layers) if layers is not None else default_student_layers(
        teacher.num_layers)
    bad = [i for i in layers if not 0 <= i < teacher.num_layers]
    if bad:
        raise ValueError(f"Student layers {bad} are not layers of the {teacher.num_layers}-layer "
                         f"teacher (0 to {teacher.num_layers - 1}).")
    name = overrides.pop("name", f"{teacher.name}_distilled_{len(layers)}l")
    arguments = {key: getattr(teacher, key) for key in _SHARED_ARGUMENTS}
    arguments.update(overrides)
    student = zoo.DistilBertBackbone(num_layers=len(layers), name=name, **arguments)

    source, target = teacher.get_layer("embeddings"), student.get_layer("embeddings")
    for part in ("token_embedding", "position_embedding", "layer_norm"):
        getattr(target, part).set_weights(getattr(source, part).get_weights())
    teacher_stack = teacher.get_layer("transformer")
    student_stack = student.get_layer("transformer")
    for student_index, teacher_index in enumerate(layers):
        student_stack.block_for_layer(student_index).set_weights(
            teacher_stack.block_for_layer(teacher_index).get_weights())
    return student


def uniform_layer_map(teacher_layers, student_layers):
    """Teacher layer (1-based) each student layer (1-based) learns from.

    TinyBERT's uniform strategy: with k = teacher / student layers, student
    layer m learns teacher layer m * k (its hidden state and its attention);
    the embeddings (layer 0) learn the teacher's embeddings. For 12 -> 4:
    [3, 6, 9, 12]. Depths that do not divide are spread as evenly as
    rounding allows.
    """
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"A {student_layers}-layer student cannot map onto a "
                         f"{teacher_layers}-layer teacher.")
    return [round(m * teacher_layers / student_layers) for m in range(1, student_layers + 1)]


def check_layer_map(layer_map, teacher_layers, student_layers):
    """`layer_map` as a list of ints, or a clear error when it cannot be one."""
    layer_map = [int(i) for i in layer_map]
    if len(layer_map) != student_layers:
        raise ValueError(f"--layer_map has {len(layer_map)} entries; the student has "
                         f"{student_layers} layers (one teacher layer, 1-based, for each).")
    bad = [i for i in layer_map if not 1 <= i <= teacher_layers]
    if bad:
        raise ValueError(f"--layer_map entries {bad} are not teacher layers (1 to "
                         f"{teacher_layers}; 0, the embeddings, is always mapped to 0).")
    return layer_map
