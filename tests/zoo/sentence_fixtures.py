"""A random BERT saved by transformers, wrapped as a Sentence-Transformers folder
by the `sentence-transformers` library itself (the reference of the tests)."""

import pytest

from tests.text_corpus import training_corpus

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
st_modules = pytest.importorskip("sentence_transformers.sentence_transformer.modules")
from sentence_transformers import SentenceTransformer  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TEXTS = ["A man is playing a guitar.", "The cat sits on the mat", "tiny",
         "Transformers encode sentences into vectors for search and clustering, "
         "and mean pooling over the tokens is what Sentence-BERT uses."]


def make_hf_model(folder):
    """A random BertModel with noisy biases and its uncased tokenizer, saved by transformers."""
    folder.mkdir(parents=True, exist_ok=True)
    trainer = tokenizers.BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(training_corpus(), vocab_size=600, special_tokens=SPECIALS)
    trainer.save_model(str(folder))
    tokenizer = transformers.BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=64)
    model = transformers.BertModel(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    model.save_pretrained(str(folder))
    return folder


def save_sentence_transformer(hf_folder, folder, pooling_mode, normalize):
    transformer = st_modules.Transformer(str(hf_folder), max_seq_length=24)
    modules = [transformer, st_modules.Pooling(32, pooling_mode=pooling_mode)]
    if normalize:
        modules.append(st_modules.Normalize())
    reference = SentenceTransformer(modules=modules, device="cpu")
    reference.save(str(folder))
    return reference
