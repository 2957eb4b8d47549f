"""TensorFlow Serving's REST ``:predict`` JSON bodies, converted in Python.

No ``tensorflow_model_server`` binary is available to the tests, so this module
does what its REST layer does around a SavedModel signature:

* :func:`request_to_inputs` turns a parsed request body (row format
  ``{"instances": [...]}`` or columnar format ``{"inputs": ...}``) into the
  signature's named input tensors;
* :func:`outputs_to_response` turns the signature's named outputs into the
  response body (``{"predictions": ...}`` or ``{"outputs": ...}``);
* :func:`predict_json` does both around a call of a loaded SavedModel.

The rules, and the wording of the error messages, follow TF Serving's
``tensorflow_serving/util/json_tensor.cc`` (``FillPredictRequestFromJson``,
``MakeJsonFromTensors``) and its REST API guide
(https://www.tensorflow.org/tfx/serving/api_rest):

* ``signature_name`` is optional (default ``"serving_default"``) and must be a
  string; a request holds exactly one of ``instances`` / ``inputs``.
* Row format: ``instances`` is a non-empty list; every element is an object
  with exactly the signature's input names, or (one-input signatures only) the
  bare value of that input.  Every instance of an input has the same shape;
  the batch dimension is the number of instances.
* Columnar format: ``inputs`` is an object keyed by input name, or (one-input
  signatures only) the bare value/list of that input.
* Tensors are nested lists whose leaves all sit at the same depth; lists on a
  level must all have the same length.
* A string leaf is utf-8 text; ``{"b64": "<base64>"}`` is binary bytes.
  int32/int64 inputs take JSON integers only (``1.0`` is rejected, as by
  rapidjson's ``IsInt``); float inputs take any number that fits without loss
  of precision; ``NaN`` / ``Infinity`` are accepted.
* Output strings are written as text, except outputs whose name ends in
  ``_bytes``, which are written as ``{"b64": ...}``.  Floats are written with
  the shortest representation that round-trips at their own precision
  (float32 ``0.2`` is ``0.2``, not ``0.20000000298023224``).  In the row format
  a one-output signature gives bare values, several outputs give one object
  per instance, and all outputs must share their 0th dimension.

Deliberate differences from the real server:

* Unknown keys in a columnar ``inputs`` object are rejected; TF Serving
  ignores them silently.
* Input shapes are checked against the signature's ``TensorSpec`` here.
* An output string that is not valid utf-8 (and not named ``*_bytes``) is
  written as ``{"b64": ...}``; TF Serving copies the raw bytes into the JSON
  text, which then is not valid utf-8.
* Output keys are sorted; TF Serving's order comes from a protobuf map and is
  unspecified.  Indentation differs too: the server pretty-prints.
"""

import base64
import binascii
import json
import math

import numpy as np
import tensorflow as tf

DEFAULT_SIGNATURE = "serving_default"
BYTES_SUFFIX = "_bytes"

_INT_RANGES = {
    tf.int8: (-(2**7), 2**7 - 1),
    tf.uint8: (0, 2**8 - 1),
    tf.int16: (-(2**15), 2**15 - 1),
    tf.int32: (-(2**31), 2**31 - 1),
    tf.int64: (-(2**63), 2**63 - 1),
    tf.uint32: (0, 2**32 - 1),
    tf.uint64: (0, 2**64 - 1),
}
# Largest integer each float type holds exactly (TF Serving's IsLosslessDecimal).
_FLOAT_EXACT_INT = {tf.float32: 2**24 - 1, tf.float64: 2**53 - 1}
_FLOAT_MAX = {tf.float32: float(np.finfo(np.float32).max), tf.float64: float(np.finfo(np.float64).max)}
_MAX_ECHO = 200  # characters of a JSON value quoted in an error message


_DT_NAMES = {tf.float32: "float", tf.float64: "double", tf.float16: "half"}


def _dtype_string(dtype):
    """TensorFlow's DataTypeString: float32 -> "float", int32 -> "int32"."""
    dtype = tf.dtypes.as_dtype(dtype)
    return _DT_NAMES.get(dtype, dtype.name)


def _echo(value):
    """A JSON value as quoted in an error message (shortened if long)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_ECHO:
        text = text[:_MAX_ECHO] + "..."
    return text


def _json_type(value):
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value):
    """``{"b64": "<string>"}`` and nothing else, as TF Serving's IsValBase64Object."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(value):
    if not _is_b64(value):
        raise ValueError(f"JSON Value: {_echo(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        # absl::Base64Unescape accepts missing padding; so do we.
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"Unable to base64 decode {_echo(value)}") from None


def _type_error(value, dtype):
    return ValueError(
        f"JSON Value: {_echo(value)} Type: {_json_type(value)} "
        f"is not of expected type: {_dtype_string(dtype)}"
    )


def _leaf(value, dtype):
    """One JSON scalar (or b64 object) as a Python value of ``dtype``."""
    if dtype == tf.string:
        if isinstance(value, dict):
            return _b64decode(value)
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype in _FLOAT_EXACT_INT or dtype in (tf.float16, tf.bfloat16):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        precise = tf.float64 if dtype == tf.float64 else tf.float32
        lossy = (
            abs(value) > _FLOAT_EXACT_INT[precise]
            if isinstance(value, int)
            else math.isfinite(value) and abs(value) > _FLOAT_MAX[precise]
        )
        if lossy:
            raise ValueError(
                f"Cannot convert JSON value: {_echo(value)} to "
                f"{_dtype_string(precise)} without loss of precision."
            )
        return float(value)
    raise ValueError(
        f"Conversion of JSON Value: {_echo(value)} to type: {_dtype_string(dtype)} is not supported"
    )


def _dense_shape(value):
    """The shape implied by following the first element of each nested list."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level, shape, dtype, out):
    """Append the leaves of ``value`` to ``out``, checking it is dense with ``shape``.

    Levels in messages count from 1 (the outermost value); TF Serving's
    message numbers the expected level one lower than the found one.
    """
    if not isinstance(value, list):
        if level != len(shape):
            raise ValueError(
                f"JSON Value: {_echo(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {len(shape) + 1}"
            )
        out.append(_leaf(value, dtype))
        return
    if level >= len(shape):
        raise ValueError(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise ValueError(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _to_array(value, dtype):
    """A JSON (nested) value as a numpy array for a tensor of ``dtype``."""
    shape = _dense_shape(value)
    flat = []
    _fill(value, 0, shape, dtype, flat)
    if dtype == tf.string:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        array = np.array(flat, dtype=dtype.as_numpy_dtype)
    return array.reshape(shape)


def _signature_specs(signature):
    """name -> TensorSpec of a concrete function's keyword inputs."""
    args, kwargs = signature.structured_input_signature
    if args:
        raise ValueError("signature takes positional inputs; a serving signature takes named inputs only")
    return dict(kwargs)


def _shape_string(shape):
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _checked(name, array, spec):
    """``array`` as the tensor for input ``name``, if its shape fits ``spec``."""
    if not spec.shape.is_compatible_with(array.shape):
        raise ValueError(
            f"input '{name}' has shape {_shape_string(array.shape)}, incompatible with "
            f"the signature's {_shape_string(spec.shape.as_list())}"
        )
    return tf.constant(array, dtype=spec.dtype)


def _request_format(body):
    """"row" or "columnar", checking the top-level keys as TF Serving does."""
    if not isinstance(body, dict):
        raise ValueError(f"JSON Value: {_echo(body)} Is not object")
    if "instances" in body and "inputs" in body:
        raise ValueError(
            f"JSON Value: {_echo(body)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if "instances" in body:
        return "row"
    if "inputs" in body:
        return "columnar"
    raise ValueError("Missing 'inputs' or 'instances' key")


def signature_name_of(body):
    """The request's ``signature_name`` (``"serving_default"`` when absent)."""
    if not isinstance(body, dict):
        raise ValueError(f"JSON Value: {_echo(body)} Is not object")
    name = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise ValueError(
            f"JSON Value: {_echo(body)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name or DEFAULT_SIGNATURE


def _row_inputs(instances, specs):
    if not isinstance(instances, list):
        raise ValueError(f"JSON Value: {_echo(instances)} Excepting 'instances' to be an list/array")
    if not instances:
        raise ValueError("No values in 'instances' array")
    names = sorted(specs)
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise ValueError(
            "instances is a plain list, but expecting list of objects as multiple input "
            f"tensors required as per tensorinfo_map (inputs: {','.join(names)})"
        )

    def is_object(value):
        return isinstance(value, dict) and not _is_b64(value)

    objects = is_object(instances[0])
    items = {name: [] for name in names}
    shapes = {}

    def add(index, name, value, where):
        if name not in specs:
            raise ValueError(
                f"Failed to process element: {index}{where} of 'instances' list. "
                f"Error: JSON object: does not have named input: {name}"
            )
        try:
            array = _to_array(value, specs[name].dtype)
        except ValueError as err:
            raise ValueError(
                f"Failed to process element: {index}{where} of 'instances' list. Error: {err}"
            ) from None
        if name in shapes and shapes[name] != array.shape:
            raise ValueError(
                f"Failed to process element: {index}{where} of 'instances' list. Error: "
                f"Expecting shape {_shape_string(shapes[name])} but got: {_shape_string(array.shape)}"
            )
        shapes[name] = array.shape
        items[name].append(array)

    for index, instance in enumerate(instances):
        if objects:
            if not is_object(instance):
                raise ValueError(f"Expecting object but got list at item {index} of input list")
            for name, value in instance.items():
                add(index, name, value, f" key: {name}")
            missing = sorted(set(names) - set(instance))
            if missing:
                raise ValueError(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_echo(instance)} keys must be equal to: {','.join(names)} "
                    f"(missing: {','.join(missing)})"
                )
        else:
            if is_object(instance):
                raise ValueError(f"Expecting value/list but got object at item {index} of input list")
            add(index, names[0], instance, "")

    return {name: _checked(name, np.stack(arrays), specs[name]) for name, arrays in items.items()}


def _columnar_inputs(inputs, specs):
    names = sorted(specs)
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(names) > 1:
            raise ValueError(
                "inputs is a plain value/list, but expecting an object as multiple input "
                f"tensors required as per tensorinfo_map (inputs: {','.join(names)})"
            )
        return {names[0]: _checked(names[0], _to_array(inputs, specs[names[0]].dtype), specs[names[0]])}
    unknown = sorted(set(inputs) - set(names))
    if unknown:
        raise ValueError(
            f"'inputs' object has unknown input(s): {','.join(unknown)}. "
            f"Inputs expected to be in the set {{{','.join(names)}}}."
        )
    result = {}
    for name in names:
        if name not in inputs:
            raise ValueError(f"Missing named input: {name} in 'inputs' object.")
        try:
            array = _to_array(inputs[name], specs[name].dtype)
        except ValueError as err:
            raise ValueError(f"Input: {name} of 'inputs' object. Error: {err}") from None
        result[name] = _checked(name, array, specs[name])
    return result


def request_to_inputs(body, signature):
    """The signature's named input tensors from a parsed REST ``:predict`` body.

    Args:
      body: the parsed JSON request, ``{"signature_name": ..., "instances": [...]}``
        (row format) or ``{"inputs": {...}}`` (columnar format).
      signature: the concrete function to call (``loaded.signatures[name]``);
        its ``structured_input_signature`` gives the input names and dtypes.

    Returns:
      dict input name -> ``tf.Tensor`` of the signature's dtype.

    Raises:
      ValueError: the body does not fit the signature; the message says why.
    """
    fmt = _request_format(body)
    specs = _signature_specs(signature)
    if not specs:
        raise ValueError("Failed to get input map for signature (it takes no inputs)")
    if fmt == "row":
        return _row_inputs(body["instances"], specs)
    return _columnar_inputs(body["inputs"], specs)


def _json_values(array, name):
    """A numpy array (any rank) as nested JSON-ready Python values."""
    dtype = tf.dtypes.as_dtype(array.dtype) if array.dtype != object else tf.string
    if dtype == tf.string:
        as_b64 = name.endswith(BYTES_SUFFIX)

        def convert(value):
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not as_b64:
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(value).decode("ascii")}

    elif dtype in (tf.float32, tf.float16, tf.bfloat16):

        def convert(value):
            # Shortest text that round-trips at float32 precision, as TF Serving writes.
            return float(str(np.float32(value)))

        array = array.astype(np.float32)
    elif dtype == tf.float64:
        convert = float
    elif dtype == tf.bool:
        convert = bool
    elif dtype.is_integer:
        convert = int
    else:
        raise ValueError(
            f"Failed to write JSON value for tensor type: {_dtype_string(dtype)} (output '{name}')"
        )

    def walk(value, depth):
        if depth == 0:
            return convert(value)
        return [walk(item, depth - 1) for item in value]

    array = np.asarray(array)
    return walk(array.tolist(), array.ndim)


def _numpy(value):
    if isinstance(value, tf.Tensor):
        return value.numpy()
    return np.asarray(value)


def outputs_to_response(outputs, body):
    """The REST response body for a signature's outputs.

    Args:
      outputs: dict output name -> tensor (or array), as a signature returns.
      body: the parsed request; its format (``instances`` or ``inputs``)
        decides the response's.

    Returns:
      ``{"predictions": [...]}`` for a row-format request: bare values when
      there is one output, else one ``{name: value}`` object per instance;
      ``{"outputs": ...}`` for a columnar request: the bare value when there is
      one output, else ``{name: value}``.
    """
    fmt = _request_format(body)
    if not outputs:
        raise ValueError("Cannot convert empty tensor map to JSON")
    arrays = {name: _numpy(outputs[name]) for name in sorted(outputs)}
    if fmt == "columnar":
        values = {name: _json_values(array, name) for name, array in arrays.items()}
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}
        return {"outputs": values}

    batch = None
    for name, array in arrays.items():
        if array.ndim == 0:
            raise ValueError(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise ValueError(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    values = {name: _json_values(array, name) for name, array in arrays.items()}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: values[name][i] for name in values} for i in range(batch)]}


def predict_json(loaded_saved_model, body_text):
    """A REST ``:predict`` call on a loaded SavedModel: request text -> response text.

    Args:
      loaded_saved_model: the result of ``tf.saved_model.load``.
      body_text: the request body (str or bytes).

    Returns:
      The response body as JSON text.

    Raises:
      ValueError: bad JSON, unknown signature, or a body that does not fit the
        signature (TF Serving answers these with HTTP 400 and
        ``{"error": <message>}``; see :func:`error_json`).
    """
    if isinstance(body_text, (bytes, bytearray)):
        body_text = body_text.decode("utf-8")
    if not body_text:
        raise ValueError("JSON Parse error: The document is empty")
    try:
        body = json.loads(body_text)
    except json.JSONDecodeError as err:
        raise ValueError(f"JSON Parse error: {err.msg} at offset: {err.pos}") from None
    name = signature_name_of(body)
    signatures = loaded_saved_model.signatures
    if name not in signatures:
        raise ValueError(f'Serving signature name: "{name}" not found in signature def')
    signature = signatures[name]
    inputs = request_to_inputs(body, signature)
    outputs = signature(**inputs)
    return json.dumps(outputs_to_response(outputs, body))


def error_json(error):
    """The body TF Serving sends with a failed request: ``{"error": message}``."""
    return json.dumps({"error": str(error)})
