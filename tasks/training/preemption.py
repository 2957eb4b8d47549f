"""Stopping a run cleanly when the cluster takes its machine away.

A scheduler preempts a job with SIGTERM and, a grace period later, SIGKILL;
a user stops it with Ctrl-C (SIGINT). While `watch` is active, the first
such signal only raises a flag: the training loop checks it after every
step, writes a checkpoint of that step and raises `Preempted`, which the
command line turns into exit status `EXIT_STATUS`. The same command started
again resumes from that step: no step is lost. The time from the signal to
the exit is one training step plus writing the checkpoint.

A second signal is not caught (the previous handler is back after the
first): a second Ctrl-C interrupts at once, a second SIGTERM kills.

During an evaluation (`interruptible`), a single-process run stops at once:
the loop's checkpoint was written before the evaluation started, so nothing
is lost. Several workers must stop together (a worker that leaves an
all-reduce hangs the others): they agree after every step, by an
all-reduce of their flags, and all stop at the same step; only the chief's
checkpoint goes to model_dir, whole (tf.train.CheckpointManager writes the
files before it names them in the `checkpoint` state file).
"""

import contextlib
import signal
import threading

import tensorflow as tf
from absl import logging

# sysexits.h EX_TEMPFAIL, "a temporary failure; the user is invited to retry":
# schedulers that restart on failure restart on it; it differs from 143
# (killed by SIGTERM, nothing saved) and 1 (an error).
EXIT_STATUS = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """The run stopped on a signal after checkpointing `step` (None: during
    an evaluation, after the loop's checkpoint)."""

    def __init__(self, signal_name, step=None, checkpoint=None):
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint
        where = (f"at step {step}, checkpoint {checkpoint}" if step is not None
                 else "during an evaluation; the loop's checkpoint is the latest")
        super().__init__(f"Stopped by {signal_name} {where}. The same command resumes "
                         f"from it (exit status {EXIT_STATUS}).")


class Watch:
    """The signal flag of one training run (see the module docstring)."""

    def __init__(self, strategy=None, multi_worker=False):
        self.strategy = strategy
        self.multi_worker = multi_worker
        self.signal_name = None  # set by the first signal
        self._agreed = False
        self._evaluating = False
        self._previous = {}

    def _handle(self, number, frame):
        del frame
        self.signal_name = signal.Signals(number).name
        self._restore()  # a second signal acts as it would without us
        logging.warning("%s received: stopping after this step with a checkpoint (a second "
                        "signal stops at once).", self.signal_name)
        if self._evaluating and not self.multi_worker:
            raise Preempted(self.signal_name)

    def _restore(self):
        for number, handler in self._previous.items():
            # None: a handler installed outside Python, which cannot be put back.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    @contextlib.contextmanager
    def active(self):
        """Catches SIGTERM and SIGINT for the duration (main thread only:
        Python delivers signals there; elsewhere the run keeps the defaults)."""
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        try:
            yield self
        finally:
            self._restore()

    @contextlib.contextmanager
    def interruptible(self):
        """An evaluation: a signal during it stops the run at once (single process)."""
        self._evaluating = True
        try:
            if self.signal_name and not self.multi_worker:
                raise Preempted(self.signal_name)
            yield
        finally:
            self._evaluating = False

    def should_stop(self):
        """Whether to stop at this step; every worker gets the same answer
        (call it once per step on every worker)."""
        if self._agreed:
            return True
        if not self.multi_worker:
            self._agreed = self.signal_name is not None
            return self._agreed
        flag = tf.constant(1.0 if self.signal_name else 0.0)
        total = self.strategy.reduce(tf.distribute.ReduceOp.SUM,
                                     self.strategy.run(lambda: tf.identity(flag)), axis=None)
        self._agreed = bool(total.numpy() > 0)
        if self._agreed and self.signal_name is None:
            self.signal_name = "another worker's signal"
        return self._agreed
