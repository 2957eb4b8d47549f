"""models.config and batching_parameters.txt, read back as TF Serving reads them.

models.config is parsed with tensorflow-serving-api's ModelServerConfig.
tensorflow-serving-api 2.21 ships no Python module for BatchingParameters
(its wheel has apis/ and config/ only), so that message is declared here
field for field as tensorflow_serving/servables/tensorflow/
session_bundle_config.proto declares it (numbers 1-7; later releases add
fields after them) and the file is parsed with it strictly: a field the
server does not know fails.
"""

import os

import pytest
from absl import flags
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from export import serving_config
from export.serving_config import Batching, ServingConfig


def batching_parameters_class():
    """tensorflow.serving.BatchingParameters, as session_bundle_config.proto declares it."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"])
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for name, number, wrapper in (("max_batch_size", 1, "Int64Value"),
                                  ("batch_timeout_micros", 2, "Int64Value"),
                                  ("max_enqueued_batches", 3, "Int64Value"),
                                  ("num_batch_threads", 4, "Int64Value"),
                                  ("thread_pool_name", 5, "StringValue")):
        message.field.add(name=name, number=number, type=field.TYPE_MESSAGE,
                          type_name=f".google.protobuf.{wrapper}", label=field.LABEL_OPTIONAL)
    message.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64,
                      label=field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL,
                      label=field.LABEL_OPTIONAL)
    pool.AddSerializedFile(file.SerializeToString())
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


BatchingParameters = batching_parameters_class()


def read_batching(path):
    with open(path) as file:
        return text_format.Parse(file.read(), BatchingParameters())


def read_models(path):
    with open(path) as file:
        return text_format.Parse(file.read(), model_server_config_pb2.ModelServerConfig())


def exported(base, name, versions):
    """Version folders as export_model leaves them (only their names matter here)."""
    for version in versions:
        os.makedirs(base / name / str(version))
    return str(base / name)


def test_models_config_merges_each_model_of_a_base(tmp_path):
    base = tmp_path / "exports"
    sst2 = exported(base, "sst2", [1, 2])
    qa = exported(base, "qa", [1])
    models, batching = ServingConfig().write(sst2)
    assert (models, batching) == (str(base / "models.config"),
                                  str(base / "batching_parameters.txt"))
    config = read_models(models).model_config_list.config
    assert [(c.name, c.base_path, c.model_platform) for c in config] == [
        ("sst2", str(base / "sst2"), "tensorflow")]
    assert config[0].model_version_policy.WhichOneof("policy_choice") == "latest"
    assert config[0].model_version_policy.latest.num_versions == 1

    # A hand edit (a version label) survives the next exports.
    with open(models) as file:
        text = file.read()
    with open(models, "w") as file:
        file.write(text.replace('model_platform: "tensorflow"', 'model_platform: "tensorflow"\n'
                                '    version_labels { key: "stable" value: 1 }'))
    with pytest.raises(ValueError, match=r"has no version 2 \(it has \[1\]\)"):
        ServingConfig(versions="1,2").write(qa)
    ServingConfig(versions="all", serving_root="/models").write(qa)
    ServingConfig(versions="2,1", serving_root="/models").write(sst2)
    config = read_models(models).model_config_list.config
    assert [(c.name, c.base_path) for c in config] == [("sst2", "/models/sst2"),
                                                       ("qa", "/models/qa")]
    assert list(config[0].model_version_policy.specific.versions) == [1, 2]
    assert dict(config[0].version_labels) == {"stable": 1}
    assert config[1].model_version_policy.WhichOneof("policy_choice") == "all"
    assert sorted(os.listdir(base)) == ["batching_parameters.txt", "models.config", "qa", "sst2"]


def test_batching_parameters_as_tf_serving_reads_them(tmp_path):
    default = read_batching(ServingConfig().write(exported(tmp_path, "m", [1]))[1])
    assert (default.max_batch_size.value, default.batch_timeout_micros.value,
            default.max_enqueued_batches.value) == (8, 1000, 4)
    assert not default.HasField("num_batch_threads")  # the server's own: one per core
    assert list(default.allowed_batch_sizes) == [] and not default.pad_variable_length_inputs

    chosen = Batching(max_batch_size=16, num_batch_threads=2, allowed_batch_sizes=(4, 8, 16),
                      pad_variable_length_inputs=True)
    parsed = text_format.Parse(chosen.to_text(), BatchingParameters())
    assert (parsed.max_batch_size.value, parsed.num_batch_threads.value) == (16, 2)
    assert list(parsed.allowed_batch_sizes) == [4, 8, 16] and parsed.pad_variable_length_inputs
    for sizes in ((4, 2, 8), (2, 4)):  # TF Serving refuses both
        with pytest.raises(ValueError, match="ending with --max_batch_size"):
            Batching(allowed_batch_sizes=sizes)
    with pytest.raises(ValueError, match="max_batch_size=0: at least 1"):
        Batching(max_batch_size=0)


def test_command_line_flags(tmp_path):
    values = flags.FlagValues()
    serving_config.define_flags(values)
    values(["export", "--serving_config", "--serving_versions=latest:2", "--max_batch_size=32",
            "--allowed_batch_sizes=8,32", "--serving_root=/srv/models"])
    models, batching = serving_config.from_flags(values).write(exported(tmp_path, "m", [1, 2]))
    config = read_models(models).model_config_list.config[0]
    assert (config.base_path, config.model_version_policy.latest.num_versions) == (
        "/srv/models/m", 2)
    parsed = read_batching(batching)
    assert parsed.max_batch_size.value == 32 and list(parsed.allowed_batch_sizes) == [8, 32]

    for argv, message in ((["--max_batch_size=4"], "--max_batch_size is written to TF "
                                                   "Serving's config files: add --serving_config"),
                          (["--serving_config", "--serving_versions=newest"], "latest:N"),
                          (["--serving_config", "--allowed_batch_sizes=8,x"], "numbers")):
        values = flags.FlagValues()
        serving_config.define_flags(values)
        values(["export"] + argv)
        with pytest.raises(ValueError, match=message):
            serving_config.from_flags(values)
