"""Training steps of one BERT shape in kerasbert, keras-hub and Hugging Face.

    python -m benchmarks.training [--shape=bert_base|bert_tiny] [--dtype=float32|bfloat16]
        [--steps=1] [--repeats=5] [--quick] [--output=benchmarks/results/training.json]

Each side fine-tunes the backbone with a 2-class head on the pooled output
(dropout 0.1, AdamW, sparse cross-entropy): Keras `model.fit` over --steps
batches for kerasbert and keras-hub, an eager forward/backward/AdamW loop
for PyTorch. The timing method and the report are `benchmarks.inference`'s
(alternating sides, medians, fraction of the matmul peak with FLOPs 3x the
forward pass).
"""

import functools

from absl import app, flags

from benchmarks import inference

if __name__ == "__main__":
    inference.define_flags("training.json")
    flags.DEFINE_integer("steps", 1, "Training steps per timed fit call (more amortizes "
                         "fit's per-call cost on small shapes).")
    app.run(functools.partial(inference.main, training=True))
