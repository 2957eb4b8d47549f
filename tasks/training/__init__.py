"""The training core: the runner, the training loop (checkpoints, resume, best
model), distribution, the optimizer and metric helpers."""
