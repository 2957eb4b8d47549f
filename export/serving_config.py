"""TF Serving's own config files beside the exports: models.config and
batching_parameters.txt.

    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2 \\
        --serving_config --serving_root=/models
    docker run -p 8500:8500 -p 8501:8501 -v "$PWD/exports:/models" tensorflow/serving \\
        --model_config_file=/models/models.config \\
        --enable_batching --batching_parameters_file=/models/batching_parameters.txt

Both go in BASE, the parent of --export_dir (BASE/NAME):

models.config, a ModelServerConfig text proto (`--model_config_file`):
    one `config` per model in `model_config_list`: its name (the folder
    NAME, as clients and the warm-up requests call it), `base_path` (the
    absolute path of BASE/NAME as the server sees it: --serving_root when
    the server mounts BASE elsewhere, e.g. in docker), platform
    "tensorflow" and a version policy. Several models share one BASE: each
    export merges its own entry into the file (replacing that entry's path,
    platform and policy) and keeps every other entry, and any other field
    (version labels, logging), as it was.
batching_parameters.txt, a BatchingParameters text proto
    (`--enable_batching --batching_parameters_file`): the server's batching
    of concurrent requests, for every model it serves (see `Batching`).

Each file is written whole or not at all (a new file renamed over the
old): TF Serving may re-read models.config at any time
(`--model_config_file_poll_wait_seconds`).
"""

import dataclasses
import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

MODELS_CONFIG = "models.config"
BATCHING_FILE = "batching_parameters.txt"


@dataclasses.dataclass(frozen=True)
class Batching:
    """BatchingParameters (tensorflow_serving/servables/tensorflow/session_bundle_config.proto).

    max_batch_size: requests merged into one model call at most.
    batch_timeout_micros: how long a request waits for others to fill a batch.
    max_enqueued_batches: batches waiting at most; beyond, requests fail at
        once (UNAVAILABLE) instead of waiting, so a client can retry elsewhere.
    num_batch_threads: batches run in parallel; 0 leaves it out of the file,
        and the server runs one per core of its own machine.
    allowed_batch_sizes: sizes a batch is padded up to (increasing, the
        last equal to max_batch_size); empty: batches keep their size.
    pad_variable_length_inputs: pad requests whose inputs differ beyond the
        batch dimension (ids of different lengths, different numbers of
        choices) with their first value; off, they are never merged.
    """

    max_batch_size: int = 8
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 4
    num_batch_threads: int = 0
    allowed_batch_sizes: tuple = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        try:
            sizes = tuple(int(size) for size in self.allowed_batch_sizes)
        except ValueError:
            raise ValueError(f"--allowed_batch_sizes={','.join(map(str, self.allowed_batch_sizes))}"
                             ": numbers, e.g. 2,4,8.") from None
        object.__setattr__(self, "allowed_batch_sizes", sizes)
        for name, least in (("max_batch_size", 1), ("batch_timeout_micros", 0),
                            ("max_enqueued_batches", 1), ("num_batch_threads", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"--{name}={getattr(self, name)}: at least {least}.")
        sizes = self.allowed_batch_sizes
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[0] < 1
                      or sizes[-1] != self.max_batch_size):
            # TF Serving refuses the file otherwise ("Last entry in
            # allowed_batch_sizes must match max_batch_size").
            raise ValueError(f"--allowed_batch_sizes={','.join(map(str, sizes))}: increasing "
                             f"positive sizes ending with --max_batch_size "
                             f"({self.max_batch_size}).")

    def to_text(self):
        """The BatchingParameters text proto (wrapped scalars as `{ value: N }`)."""
        lines = ["# BatchingParameters: tensorflow_model_server --enable_batching "
                 "--batching_parameters_file=<this file>",
                 "# (written by python -m export --serving_config)"]
        for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                     "num_batch_threads"):
            if name != "num_batch_threads" or self.num_batch_threads:
                lines.append(f"{name} {{ value: {getattr(self, name)} }}")
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        lines.append(f"pad_variable_length_inputs: {str(self.pad_variable_length_inputs).lower()}")
        return "\n".join(lines) + "\n"


def version_policy(versions):
    """"latest", "latest:N", "all" or "3,5" (specific versions) -> a
    ServableVersionPolicy, the model_version_policy of a model's entry."""
    policy = model_server_config_pb2.ModelConfig().model_version_policy
    text = str(versions).strip().lower()
    try:
        if text == "all":
            policy.all.SetInParent()
        elif text == "latest" or text.startswith("latest:"):
            count = int(text.partition(":")[2] or 1)
            if count < 1:
                raise ValueError
            policy.latest.num_versions = count
        else:
            numbers = [int(part) for part in text.split(",")]
            if not numbers or min(numbers) < 0:
                raise ValueError
            policy.specific.versions.extend(sorted(set(numbers)))
    except ValueError:
        raise ValueError(f"--serving_versions={versions!r}: latest (the newest version), "
                         "latest:N (the N newest), all, or version numbers such as 3,4."
                         ) from None
    return policy


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """What `write` puts beside an export: the version policy, where the
    server sees BASE (None: its absolute path here) and the batching."""

    versions: str = "latest"
    serving_root: str = None
    batching: Batching = Batching()

    def __post_init__(self):
        version_policy(self.versions)  # a mistyped policy fails before any export

    def write(self, export_dir):
        """Merges export_dir's model into BASE/models.config and writes
        BASE/batching_parameters.txt; returns both paths."""
        folder = os.path.abspath(export_dir)
        base, name = os.path.dirname(folder), os.path.basename(folder)
        policy = version_policy(self.versions)
        _check_versions_exist(folder, policy)
        root = self.serving_root or base
        if not os.path.isabs(root):
            raise ValueError(f"--serving_root={root!r}: an absolute path (where the server "
                             "sees BASE, e.g. /models).")
        models = os.path.join(base, MODELS_CONFIG)
        config = read_models_config(models)
        entries = config.model_config_list.config
        entry = next((entry for entry in entries if entry.name == name), None) or entries.add()
        entry.name = name
        entry.base_path = os.path.join(root, name)
        entry.model_platform = "tensorflow"
        entry.model_version_policy.CopyFrom(policy)
        header = ("# ModelServerConfig: tensorflow_model_server --model_config_file=<this file>\n"
                  "# (python -m export --serving_config merges each model it exports here)\n")
        _write_whole(models, header + text_format.MessageToString(config))
        batching = os.path.join(base, BATCHING_FILE)
        _write_whole(batching, self.batching.to_text())
        return models, batching


def read_models_config(path):
    """The ModelServerConfig in `path` (an empty one when there is no file)."""
    config = model_server_config_pb2.ModelServerConfig()
    if not os.path.exists(path):
        return config
    with open(path) as file:
        text = file.read()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(f"{path} is not a ModelServerConfig text proto ({error}); fix it or "
                         "remove it, and export again with --serving_config.") from None
    if config.HasField("custom_model_config"):
        raise ValueError(f"{path} holds a custom_model_config, not a model_config_list; "
                         "--serving_config writes model_config_list entries only.")
    return config


def _check_versions_exist(folder, policy):
    """Specific versions must be exported: TF Serving would otherwise wait
    for them at startup."""
    present = sorted(int(entry) for entry in os.listdir(folder) if entry.isdigit())
    missing = [v for v in policy.specific.versions if v not in present]
    if missing:
        raise ValueError(f"--serving_versions: {folder} has no version "
                         f"{', '.join(map(str, missing))} (it has {present}).")


def _write_whole(path, text):
    """Writes `path` through a temporary sibling renamed over it (permissions
    0666 less the umask, as open() makes them: a server may run as another user)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def define_flags(flag_values):
    """The --serving_config flags of `python -m export` (see docs/export.md)."""
    from absl import flags

    defaults = Batching()
    flags.DEFINE_bool("serving_config", False, "Also write models.config and "
                      "batching_parameters.txt into BASE, --export_dir's parent, for "
                      "tensorflow_model_server --model_config_file and "
                      "--batching_parameters_file (merging this model into an existing "
                      "models.config).", flag_values=flag_values)
    flags.DEFINE_string("serving_versions", "latest", "The versions TF Serving loads: "
                        "latest (the newest), latest:N, all, or numbers such as 3,4.",
                        flag_values=flag_values)
    flags.DEFINE_string("serving_root", None, "BASE as the server sees it (e.g. /models when "
                        "docker mounts BASE there); default: BASE's absolute path here.",
                        flag_values=flag_values)
    for name, text in (
            ("max_batch_size", "Requests merged into one model call at most."),
            ("batch_timeout_micros", "Microseconds a request waits for others to fill a "
             "batch."),
            ("max_enqueued_batches", "Batches waiting at most; beyond, requests fail at once "
             "(UNAVAILABLE)."),
            ("num_batch_threads", "Batches run in parallel; 0: one per core of the server.")):
        flags.DEFINE_integer(name, getattr(defaults, name), f"batching_parameters.txt: {text}",
                             flag_values=flag_values)
    flags.DEFINE_list("allowed_batch_sizes", [], "batching_parameters.txt: sizes batches are "
                      "padded up to, increasing, the last = --max_batch_size (default: none).",
                      flag_values=flag_values)
    flags.DEFINE_bool("pad_variable_length_inputs", False, "batching_parameters.txt: merge "
                      "requests of different lengths, padded with their first value.",
                      flag_values=flag_values)


_BATCHING_FLAGS = tuple(field.name for field in dataclasses.fields(Batching))


def from_flags(flag_values):
    """The ServingConfig the flags ask for, or None without --serving_config
    (checked before exporting: a wrong value fails at once)."""
    given = [name for name in _BATCHING_FLAGS + ("serving_versions", "serving_root")
             if flag_values[name].present]
    if not flag_values.serving_config:
        if given:
            raise ValueError(f"--{given[0]} is written to TF Serving's config files: add "
                             "--serving_config.")
        return None
    batching = Batching(**{name: getattr(flag_values, name) for name in _BATCHING_FLAGS})
    return ServingConfig(versions=flag_values.serving_versions,
                         serving_root=flag_values.serving_root, batching=batching)
