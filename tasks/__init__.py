"""Training: task modules, data readers, losses, metrics, optimizers, the absl runner."""
