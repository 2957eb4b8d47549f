"""read_torch_bin: torch.save zip files -> numpy, checked against torch.load."""

import os
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest

from zoo.convert.torch_bin import UnsafeCheckpointError, read_torch_bin

torch = pytest.importorskip("torch")


def to_numpy(t):
    """torch tensor -> numpy with the same dtype (bf16 via ml_dtypes)."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def assert_same(ours, theirs):
    """Exact equality, dtype and shape included."""
    theirs = to_numpy(theirs)
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    if ours.dtype == ml_dtypes.bfloat16:
        ours, theirs = ours.astype(np.float32), theirs.astype(np.float32)
    np.testing.assert_array_equal(ours, theirs)


def mixed_state_dict():
    base = torch.randn(4, 6)
    shared = torch.arange(20, dtype=torch.float32)
    return {
        "f32": torch.randn(3, 5),
        "f16": torch.randn(7).half(),
        "bf16": torch.randn(2, 3).bfloat16(),
        "i64": torch.arange(-5, 5),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(2.5),
        "transposed": base.t(),  # non-contiguous, saved without .contiguous()
        "base": base,
        "shared_a": shared[2:8],  # same storage, different offsets
        "shared_b": shared[10:16].view(2, 3),
        "strided": shared[1::3],
        "empty": torch.zeros(0, 3),
    }


@pytest.mark.parametrize("to_file_object", [False, True])
def test_matches_torch_load(tmp_path, to_file_object):
    path = tmp_path / "mixed.bin"
    if to_file_object:  # a file object makes the archive folder "archive"
        with open(path, "wb") as f:
            torch.save(mixed_state_dict(), f)
    else:  # a path names it after the file stem ("mixed")
        torch.save(mixed_state_dict(), path)
    ours = read_torch_bin(path)
    theirs = torch.load(path, weights_only=True)
    assert type(ours) is dict
    assert list(ours) == list(theirs)
    for name in theirs:
        assert_same(ours[name], theirs[name])
    assert ours["scalar"].shape == ()
    assert ours["transposed"].flags.c_contiguous


def test_big_endian_archive(tmp_path):
    """A file written on a big-endian machine records it in <archive>/byteorder."""
    src, dst = tmp_path / "le.bin", tmp_path / "be.bin"
    state = {"w": torch.randn(3, 2), "i": torch.arange(4), "h": torch.randn(5).bfloat16()}
    torch.save(state, src)
    widths = {"0": 4, "1": 8, "2": 2}  # storage keys follow insertion order
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            folder, _, key = info.filename.rpartition("/")
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif folder.endswith("/data"):
                data = np.frombuffer(data, f"<u{widths[key]}").astype(f">u{widths[key]}").tobytes()
            zout.writestr(info, data)
    ours = read_torch_bin(dst)
    for name, tensor in state.items():
        assert_same(ours[name], tensor)


def test_hugging_face_bert_checkpoint(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
    )
    model = transformers.BertForPreTraining(config).eval()
    model.save_pretrained(tmp_path, safe_serialization=False)
    path = tmp_path / "pytorch_model.bin"
    if not path.exists():
        # transformers >= 5 always writes safetensors; 4.x wrote exactly this.
        torch.save(model.state_dict(), path)
    ours = read_torch_bin(path)
    assert set(ours) == set(torch.load(path, weights_only=True))
    expected = model.state_dict()
    assert "bert.embeddings.word_embeddings.weight" in ours
    for name, array in ours.items():
        assert_same(array, expected[name])


class _Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def _evil_zip(path, payload):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": payload}, protocol=2))
        zf.writestr("archive/version", "3\n")


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval"])
def test_malicious_pickle_is_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "os.system":
        payload = _Payload(os.system, f"touch {marker}")
    else:
        payload = _Payload(eval, f"open({str(marker)!r}, 'w').close()")
    path = tmp_path / "evil.bin"
    _evil_zip(path, payload)
    with pytest.raises(UnsafeCheckpointError, match="not a plain state dict") as info:
        read_torch_bin(path)
    # Module names differ by platform (os.system pickles as posix.system).
    assert kind.split(".")[1] in str(info.value)
    assert not marker.exists()


def test_legacy_format_is_explained(tmp_path):
    path = tmp_path / "legacy.bin"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="legacy") as info:
        read_torch_bin(path)
    assert "safetensors" in str(info.value)
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_zip_without_pickle_is_rejected(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="not a torch.save archive"):
        read_torch_bin(path)


def test_out_of_bounds_view_is_rejected():
    from zoo.convert.torch_bin import _rebuild_tensor_v2

    storage = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(_rebuild_tensor_v2(storage, 1, (2, 2), (1, 2)), [[1, 3], [2, 4]])
    with pytest.raises(ValueError, match="outside its storage"):
        _rebuild_tensor_v2(storage, 4, (2, 2), (2, 1))

