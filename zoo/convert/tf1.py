"""Google TF1 checkpoints (google-research/bert and ALBERT releases)."""

import glob
import os


def find_tf1_checkpoint(path):
    """The checkpoint prefix at `path` (a prefix or a folder), or None."""
    if os.path.exists(path + ".index"):
        return path
    if os.path.isdir(path):
        indexes = sorted(glob.glob(os.path.join(path, "*.ckpt*.index")))
        if indexes:
            return indexes[0][: -len(".index")]
    return None


def load_tf1(path, with_head=False, **overrides):
    raise NotImplementedError("TF1 checkpoints: not yet")
