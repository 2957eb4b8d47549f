"""A deterministic corpus of varied lines for tokenizer parity tests.

Mixed case, accents, CJK, emoji, URLs, numbers, long words, punctuation
runs, full-width letters, zero-width and control characters, special tokens
written in the text, empty and whitespace-only lines: what real inputs hold
and where tokenizers disagree.
"""

import random

WORDS = (
    "the of and to in is was for on that with as by at from his her they this had not are "
    "but have one which were all their been has when who will more no if out so said what "
    "up its about into than them can only other new some could time these two may then do "
    "first any my now such like our over man me even most made after also did many before "
    "must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great "
    "old year off come since against go came right used take three language model token "
    "transformer attention embedding gradient tensor learning network training evaluation"
).split()
CAPITALIZED = ["Paris", "London", "Berlin", "Tokyo", "BERT", "ALBERT", "TensorFlow", "Keras",
               "McDonald", "iPhone", "O'Neil", "NASA", "DistilBERT", "ViT", "GitHub"]
ACCENTED = ["café", "naïve", "résumé", "Ångström", "façade", "jalapeño", "Zürich",
            "São Paulo", "Kraków", "Dvořák", "Ærø", "Øresund", "crème brûlée", "İstanbul",
            "straße", "ΑΘΗΝΑ", "Москва", "cœur", "niño", "Đà Nẵng"]
CJK = ["我爱自然语言处理", "東京都", "日本語のテキスト", "北京大学", "한국어 문장", "漢字とかな",
       "中文，标点。", "「引用」", "ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３"]
EMOJI = ["😀", "👍🏽", "🇫🇷", "❤️", "🤖", "🎉🎉", "👩‍💻"]
URLS = ["https://example.com/path?q=1&x=2", "http://www.test.org/a_b-c.html",
        "user@example.com", "ftp://files.server.net/data.tar.gz", "www.kerasbert.dev"]
NUMBERS = ["42", "3.14159", "1,000,000", "-7", "1e-12", "2026-11-25", "12:30", "$5.99",
           "50%", "#1", "No.7", "1/2", "0x1F"]
ODD = ["\u200b", "\u200d", "\u00ad", "\t", "\u3000", "\u00a0", "\ufeff", "\x07", "\u2028",
       "\u0301", "\ufffd"]
SPECIAL = ["[SEP]", "[CLS]", "[MASK]", "[UNK]", "[PAD]", "[sep]", "x[SEP]y"]
PUNCTUATION = ["...", "!!!", "?!", "--", "—", "–", "(", ")", "\"", "'", ";", ":", "«", "»",
               "…", "•", "·", "¿", "¡", "@", "&", "*", "~", "^", "`", "\\", "|", "{", "}"]


def _long_word(rng):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(25, 130)))


def _piece(rng):
    kind = rng.random()
    if kind < 0.45:
        word = rng.choice(WORDS)
        roll = rng.random()
        return word.upper() if roll < 0.05 else word.capitalize() if roll < 0.2 else word
    for limit, pool in ((0.53, CAPITALIZED), (0.61, ACCENTED), (0.67, CJK), (0.71, EMOJI),
                        (0.74, URLS), (0.80, NUMBERS), (0.84, ODD), (0.86, SPECIAL),
                        (0.95, PUNCTUATION)):
        if kind < limit:
            return rng.choice(pool)
    return _long_word(rng)


def corpus(lines=2200, seed=0):
    """`lines` strings, deterministic for a seed; about 2% empty or blank."""
    rng = random.Random(seed)
    result = []
    for index in range(lines):
        if index % 50 == 0:
            result.append(rng.choice(["", " ", "   ", "\t", "\n", " \u3000 "]))
            continue
        pieces = [_piece(rng) for _ in range(rng.randint(1, 40))]
        joiners = [rng.choice([" ", " ", " ", "", "  ", "\n"]) for _ in pieces]
        result.append("".join(p + j for p, j in zip(pieces, joiners)).strip(" "))
    return result


def training_corpus(lines=3000, seed=1):
    """Plain text to learn a vocabulary from (words, accents, CJK, numbers)."""
    rng = random.Random(seed)
    pools = WORDS * 6 + CAPITALIZED + ACCENTED + CJK + NUMBERS + PUNCTUATION
    return [" ".join(rng.choice(pools) for _ in range(rng.randint(3, 25)))
            for _ in range(lines)]
