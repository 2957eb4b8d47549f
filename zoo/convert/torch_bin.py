"""Read PyTorch ``pytorch_model.bin`` state dicts into numpy, without torch.

Since torch 1.6, ``torch.save`` writes a zip archive: ``<archive>/data.pkl``
is a pickle of the state dict whose tensors refer, through persistent ids, to
raw little-endian storages stored as ``<archive>/data/<key>``. Unpickling can
call any importable function, so the unpickler below resolves only the few
globals a state dict needs and replaces them with numpy stand-ins; anything
else raises :class:`UnsafeCheckpointError` before it can run.
"""

import collections
import pickle
import zipfile

import ml_dtypes
import numpy as np

__all__ = ["read_torch_bin", "UnsafeCheckpointError"]


class UnsafeCheckpointError(ValueError):
    """The pickle asked for something outside the state-dict allow-list."""


# Typed storages, as written by ``_rebuild_tensor_v2`` for the classic dtypes.
_STORAGES = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128,
}
# Newer dtypes are saved as an untyped (byte) storage plus a ``torch.<dtype>``
# global, rebuilt by ``_rebuild_tensor_v3``.
_V3_DTYPES = {
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2,
}


def _strided(storage, storage_offset, size, stride):
    """Copy the (size, stride) view at storage_offset, strides in elements."""
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or min(size + stride, default=0) < 0:
        raise ValueError(f"bad tensor geometry: size={size}, stride={stride}")
    if 0 not in size:  # as_strided does no bounds checks, so do them here
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if not 0 <= storage_offset <= last < storage.size:
            raise ValueError("tensor reaches outside its storage")
    base = storage[storage_offset:]
    view = np.lib.stride_tricks.as_strided(
        base, size, [s * storage.itemsize for s in stride], writeable=False
    )
    return view.copy()


def _with_metadata(array, metadata):
    """Apply the lazy ``neg``/``conj`` bits torch may record per tensor."""
    metadata = metadata or {}
    if set(metadata) - {"neg", "conj"}:
        raise ValueError(f"unsupported tensor metadata {metadata!r}")
    if metadata.get("neg"):
        array = -array
    if metadata.get("conj"):
        array = np.conj(array)
    return array


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a numpy copy."""
    return _with_metadata(_strided(storage, storage_offset, size, stride), metadata)


def _rebuild_tensor_v3(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
):
    """Stand-in for ``_rebuild_tensor_v3``: byte storage viewed as ``dtype``."""
    if not isinstance(dtype, np.dtype) or storage.dtype != np.uint8:
        raise ValueError(f"bad _rebuild_tensor_v3 dtype/storage: {dtype!r}")
    typed = storage[: storage.size // dtype.itemsize * dtype.itemsize].view(dtype)
    return _with_metadata(_strided(typed, storage_offset, size, stride), metadata)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    """A saved ``nn.Parameter`` is just its data; extra state is dropped."""
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "UntypedStorage"): np.dtype(np.uint8),
    **{("torch", name): np.dtype(t) for name, t in _STORAGES.items()},
    **{("torch", name): np.dtype(t) for name, t in _V3_DTYPES.items()},
}


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickler limited to ``_ALLOWED``; storages come from the zip."""

    def __init__(self, archive, prefix, big_endian):
        super().__init__(archive.open(prefix + "data.pkl"))
        self._archive, self._prefix, self._big_endian = archive, prefix, big_endian
        self._storages = {}  # key -> 1-d array; tensors sharing a storage share it

    def find_class(self, module, name):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise UnsafeCheckpointError(
                f"checkpoint pickle asks for {module}.{name}, which is not allowed: "
                "the file is not a plain state dict of tensors"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, _numel = pid
        if not isinstance(dtype, np.dtype):
            raise UnsafeCheckpointError(f"storage type {dtype!r} is not a torch storage")
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}data/{key}")
            array = np.frombuffer(raw, dtype=dtype)
            self._storages[key] = array.byteswap() if self._big_endian else array
        return self._storages[key]


def read_torch_bin(path):
    """State dict of a torch.save zip file as numpy arrays, without torch.

    Returns a plain ``{name: np.ndarray}`` keeping torch's dtypes (bfloat16
    and float8 come back as ``ml_dtypes`` types). Raises ValueError for legacy
    (pre-1.6, non-zip) files and UnsafeCheckpointError for pickles that ask for
    anything beyond tensors and dicts.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a zip archive; it is probably a legacy (pre torch 1.6) "
            "checkpoint. Re-save it with a recent torch (torch.save(torch.load(f), f)) "
            "or convert it to safetensors."
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path} is a zip but not a torch.save archive (no <name>/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        big_endian = (
            byteorder in archive.namelist() and archive.read(byteorder).strip() == b"big"
        )
        state = _StateDictUnpickler(archive, prefix, big_endian).load()
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    for name, value in state.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
    return dict(state)
