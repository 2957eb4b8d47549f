"""Calls an export the way a server does: in a fresh process that loads only
TensorFlow and tensorflow-text's op libraries (no keras, no project code).

    outputs = call_in_fresh_process(version_dir, {"serving_default": {"text": [...]}})
    outputs = call_exports_in_fresh_process({version_dir: {"serving_default": ...}, ...})

The child registers the tensorflow-text ops with `tf.load_op_library` on the
`_*.so` files of the installed package (importing tensorflow_text itself
would import keras), then forbids importing this project, tensorflow_text
and any keras module (TensorFlow 2.21's own `import tensorflow` loads the
installed keras for its `tf.keras` alias; nothing beyond that may load),
loads the SavedModel and calls each signature by name with the given
inputs. Returns {signature: {output: numpy array}}.

A call named "signature:label" calls `signature` (so one signature can be
called with several inputs: "serving_default:empty_batch"). A call that
raises stops the process with its error, unless record_errors=True: then
that call's result is a `CallError` (the error's type name and message)
and the other calls go on.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import typing

import numpy as np

_CHILD = r'''
import glob, os, sys
import numpy as np
import tensorflow as tf

# From here on, importing this project, tensorflow_text (the Python package:
# its op libraries are loaded below) or any keras module that `import
# tensorflow` has not already loaded (its tf.keras alias) fails: the export
# must load and run without them.
_ALLOWED_KERAS = {m for m in sys.modules if m.split(".")[0] in ("keras", "tf_keras")}
class _Forbid:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ("kerasbert", "zoo", "tasks", "export", "tensorflow_text") or (
                top in ("keras", "tf_keras") and name not in _ALLOWED_KERAS):
            raise ImportError(f"the server process may not import {name}")
sys.meta_path.insert(0, _Forbid())

ops_folder, inputs_file, outputs_file, record_errors = sys.argv[1:5]
for library in sorted(glob.glob(os.path.join(ops_folder, "_*.so"))):
    tf.load_op_library(library)
inputs = np.load(inputs_file, allow_pickle=True)
calls = {}  # export index -> call ("signature[:label]") -> {input name: value}
for key in inputs.files:
    if key.startswith("path/"):
        continue
    index, call, name = key.split("/", 2)
    calls.setdefault(index, {}).setdefault(call, {})[name] = inputs[key]
outputs = {}
for index, export_calls in calls.items():
    loaded = tf.saved_model.load(str(inputs[f"path/{index}"]))
    for call, arguments in export_calls.items():
        function = loaded.signatures[call.split(":")[0]]
        try:
            results = function(**{k: tf.constant(v) for k, v in arguments.items()})
        except Exception as error:
            if record_errors != "1":
                raise
            outputs[f"{index}/{call}/error:"] = np.array([type(error).__name__, str(error)])
            continue
        for name, value in results.items():
            outputs[f"{index}/{call}/{name}"] = value.numpy()
imported = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tf_keras")
                  and m not in _ALLOWED_KERAS)
if imported:
    raise SystemExit(f"the server process imported {imported[:5]}")
np.savez(outputs_file, **outputs)
'''
_ERROR = "error:"  # where the child saves a call's error (no output name has a colon)


class CallError(typing.NamedTuple):
    """A call that raised (record_errors=True): its error's type name and message."""

    type: str
    message: str


def text_ops_folder():
    """The folder holding tensorflow-text's op libraries (found without importing it)."""
    spec = importlib.util.find_spec("tensorflow_text")
    return os.path.join(list(spec.submodule_search_locations)[0], "python", "ops")


def call_in_fresh_process(saved_model_dir, inputs, timeout=600, record_errors=False):
    """{signature: {input name: array-like}} -> {signature: {output name: array}}."""
    return call_exports_in_fresh_process({saved_model_dir: inputs}, timeout,
                                         record_errors)[saved_model_dir]


def call_exports_in_fresh_process(calls, timeout=600, record_errors=False):
    """{SavedModel dir: {signature: {input: array}}} -> {dir: {signature: {output:
    array}}}: several exports in one fresh process (TensorFlow loads once).
    record_errors: a call that raises gives a CallError instead of stopping
    the process (see the module's docstring)."""
    paths = list(calls)
    with tempfile.TemporaryDirectory() as folder:
        inputs_file = os.path.join(folder, "inputs.npz")
        outputs_file = os.path.join(folder, "outputs.npz")
        arrays = {f"path/{index}": np.asarray(path) for index, path in enumerate(paths)}
        arrays.update({f"{index}/{signature}/{name}": np.asarray(value)
                       for index, path in enumerate(paths)
                       for signature, arguments in calls[path].items()
                       for name, value in arguments.items()})
        np.savez(inputs_file, **arrays)
        environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        environment.pop("PYTHONPATH", None)
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, text_ops_folder(), inputs_file, outputs_file,
             "1" if record_errors else "0"],
            capture_output=True, text=True, timeout=timeout, cwd=folder, env=environment)
        if done.returncode != 0:
            raise RuntimeError(f"The export failed in a fresh process:\n{done.stderr[-3000:]}")
        saved = np.load(outputs_file, allow_pickle=True)
        outputs = {path: {} for path in paths}
        for key in saved.files:
            index, call, name = key.split("/", 2)
            if name == _ERROR:
                outputs[paths[int(index)]][call] = CallError(*saved[key].tolist())
            else:
                outputs[paths[int(index)]].setdefault(call, {})[name] = saved[key]
        return outputs
