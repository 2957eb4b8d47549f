"""What every distillation task shares on top of the Task interface."""

import keras


class DistillationTask:
    """Mixin for the distill_* tasks: the Distiller's objective is the loss,
    the student alone is trained (and checkpointed), and evaluation reports
    the teacher's scores (computed once per split) and `retention`, the
    student's primary metric over the teacher's."""

    distills = True

    def trained_model(self, model):
        return model.student

    def build_losses(self):
        return None  # the Distiller's objective is the loss

    def build_metrics(self):
        return None

    def with_teacher_scores(self, scores, split, evaluate):
        """`scores` plus teacher_<metric> and retention; evaluate(task model)
        scores a model as the student was scored."""
        cache = self.__dict__.setdefault("_teacher_scores", {})
        if split not in cache:
            cache[split] = evaluate(keras.Model(self.teacher.input, self.teacher.output["task"]))
        teacher_scores = cache[split]
        scores.update({f"teacher_{name}": value for name, value in teacher_scores.items()})
        primary = self.primary_metric
        scores["retention"] = (scores[primary] / teacher_scores[primary]
                               if teacher_scores[primary] else float("nan"))
        return scores
