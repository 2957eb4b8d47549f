"""assets.extra/tf_serving_warmup_requests: real requests TF Serving replays
at load, so the first client request does not pay for graph warm-up.

The file is a TFRecord of PredictionLog protos (tensorflow-serving-api), as
TF Serving's SavedModel warmup reads it: requests to `serving_default` with
one and with three inputs (an ordinary text, an empty one and one longer
than the sequence length; or blank images; for multiple choice, each text
with the trained number of choices), and one to `serve_ids`.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from export import choices

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_TEXTS = ["a short warm-up request", "", "a long warm-up request " * 100]


def sample_inputs(spec, signature):
    """{input name: numpy array} for one warm-up request of `signature`."""
    if spec.kind == "choice":
        return choices.sample_inputs(spec, signature, _TEXTS)
    if spec.is_image:
        height, width = spec.image_size
        if signature == "serve_ids":
            return {"images": tf.zeros([1, height, width, spec.num_channels]).numpy()}
        blank = tf.io.encode_png(tf.zeros([height, width, spec.num_channels], tf.uint8))
        return {"image_bytes": tf.stack([blank] * 3).numpy()}
    if signature == "serve_ids":
        ids = tf.constant([[1, 1, 1, 0]], tf.int32).numpy()
        return {"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
                "input_type_ids": 0 * ids}
    return {name: tf.constant([text.encode() for text in _TEXTS]).numpy()
            for name in spec.text_inputs}


def requests(spec, model_name):
    """The PredictRequests written to the warm-up file."""
    result = []
    for signature, rows in (("serving_default", 1), ("serving_default", 3), ("serve_ids", 1)):
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
            name=model_name, signature_name=signature))
        for name, value in sample_inputs(spec, signature).items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value[:rows]))
        result.append(request)
    return result


def write_warmup_requests(saved_model_dir, spec, model_name):
    """Writes the warm-up file into an exported SavedModel folder."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests(spec, model_name):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
