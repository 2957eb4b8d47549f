"""One run per model_dir, and a resumed run that trains what was started.

`lock(folder)`: a run holds model_dir/run.lock (an exclusive `flock`) from
start to end. A second run on the folder is refused with the first one's
process id, host and start time, which the lock file holds. The kernel
releases the lock when its process ends in any way (SIGKILL included), so a
killed run never leaves a stale lock; on a shared file system the lock is
as good as that file system's flock (NFS and Lustre emulate it with POSIX
locks, seen by every client).

`check_settings` / `record_settings`: a run records its settings in
model_dir/run.json before it trains. Started again on that folder (a
resume), settings that change the model, the task, the data or the batch
are refused with the list of what changed; the others (those declared with
`may_change=True`: more steps, evaluation frequency, the learning rate,
where to export) are accepted, logged and recorded with the resume.
"""

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import socket

from absl import logging

LOCK_FILE = "run.lock"
SETTINGS_FILE = "run.json"


class InUse(RuntimeError):
    """Another process is running in this model_dir."""


class SettingsChanged(ValueError):
    """A resume with settings the run cannot continue with."""


def _now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


@contextlib.contextmanager
def lock(folder):
    """Holds `folder`/run.lock for the duration; raises InUse naming the holder."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_FILE)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"{folder} is in use by {_holder(handle)} ({path}): a second run there "
                        "would overwrite its checkpoints. Wait for it to end or stop it, or "
                        "pass another --model_dir.") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(handle)  # releases the lock


def _holder(handle):
    """"process 123 on host, started at ..." from the lock file's content."""
    try:
        holder = json.loads(os.pread(handle, 4096, 0).decode() or "{}")
    except ValueError:
        holder = {}
    if not holder:
        return "another process (starting now)"
    return (f"process {holder.get('pid')} on {holder.get('host')}, started at "
            f"{holder.get('started')}")


def comparable(values):
    """`values` as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(values, sort_keys=True, default=str))


def check_settings(folder, settings, may_change, resuming):
    """Checks `settings` ({name: value}) against those recorded in
    `folder`/run.json when the run resumes (`resuming`: the folder holds a
    checkpoint): refuses one that differs in a name not in `may_change`, and
    returns {name: (recorded, now)} of the accepted changes (logged). Returns
    None when there is nothing to resume: a run that never reached a
    checkpoint may be started again with any settings."""
    path = os.path.join(folder, SETTINGS_FILE)
    if not resuming:
        return None
    if not os.path.exists(path):
        logging.warning("%s has checkpoints but no %s (an older run): its settings cannot "
                        "be checked; the ones of this run are recorded now.", folder,
                        SETTINGS_FILE)
        return {}
    with open(path) as file:
        recorded = json.load(file)["settings"]
    now = comparable(settings)
    changed = {name: (recorded.get(name), now.get(name))
               for name in sorted(set(recorded) | set(now))
               if recorded.get(name) != now.get(name)}
    refused = {name: values for name, values in changed.items() if name not in may_change}
    if refused:
        listed = "; ".join(f"--{name}: {old!r} then, {new!r} now"
                           for name, (old, new) in refused.items())
        raise SettingsChanged(
            f"{folder} holds a run started with other settings ({path}): {listed}. These "
            "change the model, the task, the data or the batch, so the run cannot resume "
            "with them. Start the new run in another --model_dir, or give the recorded values.")
    for name, (old, new) in changed.items():
        logging.info("Resuming with --%s=%r (was %r).", name, new, old)
    return changed


def record_settings(folder, settings, changed=None):
    """Writes `settings` to `folder`/run.json (whole or not at all); a resume
    (`changed` not None) keeps the first start's time and appends its changes."""
    path = os.path.join(folder, SETTINGS_FILE)
    record = {"settings": comparable(settings), "started": _now(), "resumes": []}
    if changed is not None and os.path.exists(path):
        with open(path) as file:
            previous = json.load(file)
        record["started"] = previous.get("started", record["started"])
        record["resumes"] = previous.get("resumes", []) + [
            {"at": _now(), "changed": comparable(changed)}]
    write_json(path, record)


def write_json(path, content):
    """Writes `content` to `path` as JSON, whole or not at all."""
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        json.dump(content, file, indent=2, sort_keys=True)
    os.replace(temporary, path)


def run_settings(settings, task_options):
    """{name: value} of a run: its settings with the task's resolved options
    (each option under its own name, as its flag)."""
    values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)
              if field.name != "options"}
    values.update(dataclasses.asdict(task_options))
    # A local file or folder is compared by where it is, however it was named.
    return {name: os.path.abspath(value) if isinstance(value, str) and value
            and os.path.exists(value) else value for name, value in values.items()}
