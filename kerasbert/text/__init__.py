"""Text in the graph: tokenizers, input packing, MLM masking, vocabulary building."""

from kerasbert.text.bpe import ByteLevelBpeTokenizer
from kerasbert.text.masking import MaskedLMMasker
from kerasbert.text.packing import TRUNCATIONS, InputPacker
from kerasbert.text.pairs import next_sentence_pairs, pairs_dataset, sentence_order_pairs
from kerasbert.text.preprocessor import Preprocessor
from kerasbert.text.sentencepiece import SentencePieceTokenizer
from kerasbert.text.vocab_builder import build_sentencepiece_model, build_wordpiece_vocabulary
from kerasbert.text.vocabulary import Vocabulary
from kerasbert.text.wordpiece import KerasHubWordPieceTokenizer, WordPieceTokenizer

__all__ = [
    "TRUNCATIONS",
    "ByteLevelBpeTokenizer",
    "InputPacker",
    "KerasHubWordPieceTokenizer",
    "MaskedLMMasker",
    "Preprocessor",
    "SentencePieceTokenizer",
    "Vocabulary",
    "WordPieceTokenizer",
    "build_sentencepiece_model",
    "build_wordpiece_vocabulary",
    "next_sentence_pairs",
    "pairs_dataset",
    "sentence_order_pairs",
]
