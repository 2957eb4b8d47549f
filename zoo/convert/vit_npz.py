"""Original ViT .npz checkpoints (JAX naming)."""


def load_vit_npz(path, with_head=False, **overrides):
    raise NotImplementedError("ViT .npz: not yet")
