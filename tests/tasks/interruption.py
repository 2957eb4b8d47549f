"""A run interrupted after a given step, as a preempted job leaves it."""

import os
import shutil

import tensorflow as tf


def interrupted_copy(model_dir, crashed_dir, step):
    """`crashed_dir` holds only `model_dir`'s checkpoint of `step` (as the
    latest), so running the same settings there resumes from that step."""
    source, target = os.path.join(model_dir, "checkpoints"), os.path.join(crashed_dir,
                                                                         "checkpoints")
    os.makedirs(target)
    for name in os.listdir(source):
        if name.startswith(f"ckpt-{step}."):
            shutil.copy(os.path.join(source, name), os.path.join(target, name))
    tf.compat.v1.train.update_checkpoint_state(target, os.path.join(target, f"ckpt-{step}"))
