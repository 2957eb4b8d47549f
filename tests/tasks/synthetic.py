"""Small synthetic text tasks that a model can only solve by reading the text.

Each writes train.csv and validation.csv into a folder and returns it; the
validation rows are generated independently (unseen during training).
"""

import csv
import os
import random

WORDS = [f"w{i}" for i in range(24)]
COLORS = ["red", "green", "blue"]


def _write(folder, name, header, rows):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.csv"), "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def shared_word_pairs(folder, train=4000, validation=300, seed=0):
    """Pairs: label 1 when text_b shares two words with text_a, 0 when none
    (chance: 50%; neither text alone tells)."""
    rng = random.Random(seed)

    def row():
        a = rng.sample(WORDS, 4)
        positive = rng.random() < 0.5
        b = rng.sample([w for w in WORDS if w not in a], 4)
        if positive:
            b[:2] = rng.sample(a, 2)
            rng.shuffle(b)
        return [" ".join(a), " ".join(b), int(positive)]

    for split, count in (("train", train), ("validation", validation)):
        _write(folder, split, ["text_a", "text_b", "label"], [row() for _ in range(count)])
    return folder


def counting_regression(folder, train=1200, validation=300, seed=0):
    """Score = (#"good" - #"bad") / 4 among filler words (chance Pearson: 0)."""
    rng = random.Random(seed)

    def row():
        good, bad = rng.randint(0, 4), rng.randint(0, 4)
        words = ["good"] * good + ["bad"] * bad + rng.sample(WORDS, 6)
        rng.shuffle(words)
        return [" ".join(words), (good - bad) / 4]

    for split, count in (("train", train), ("validation", validation)):
        _write(folder, split, ["text", "label"], [row() for _ in range(count)])
    return folder


def color_multilabel(folder, train=1200, validation=300, seed=0):
    """Labels = the colors named in the text, any subset (chance micro-F1 ~0.5)."""
    rng = random.Random(seed)

    def row():
        colors = [c for c in COLORS if rng.random() < 0.5]
        words = colors + rng.sample(WORDS, 6)
        rng.shuffle(words)
        return [" ".join(words), ",".join(colors)]

    for split, count in (("train", train), ("validation", validation)):
        _write(folder, split, ["text", "label"], [row() for _ in range(count)])
    return folder


def negated_sentiment(folder, train=2000, validation=300, seed=0):
    """Label = the polarity of the one opinion word ("good", "great", "bad",
    "awful"), flipped when a "not" is among the two words before it ("not
    good", "not very good"); a "not" further away negates nothing. Chance:
    50%; the words alone do not tell, their order does."""
    rng = random.Random(seed)
    positive, negative = ("good", "great"), ("bad", "awful")

    def row():
        opinion = rng.choice(positive + negative)
        phrase = (["not"] if rng.random() < 0.5 else []) + \
            (["very"] if rng.random() < 0.5 else []) + [opinion]
        words = rng.sample(WORDS, 5)
        if rng.random() < 0.5:  # a "not" that may or may not negate
            words.insert(rng.randrange(len(words) + 1), "not")
        cut = rng.randrange(len(words) + 1)
        words = words[:cut] + phrase + words[cut:]
        at = words.index(opinion)
        negated = "not" in words[max(0, at - 2):at]
        return [" ".join(words), int((opinion in positive) != negated)]

    for split, count in (("train", train), ("validation", validation)):
        _write(folder, split, ["text", "label"], [row() for _ in range(count)])
    return folder




def story_corruption(folder, train=600, validation=300, seed=0):
    """Pairs of consecutive sentences of a new story in the pretraining task's
    world (tasks.pretraining.grammar_documents), as text_a and text_b: label 1
    as written, 0 when one word of either was replaced by another word of that
    world ("the cat eats five"). Chance: 50%; every word is a real one, only
    its place in the story tells. The stories are not the pretraining
    corpus's (other seeds)."""
    from tasks.pretraining import grammar_documents

    rng = random.Random(seed)
    for split, count, stories_seed in (("train", train, 10 + seed),
                                       ("validation", validation, 20 + seed)):
        documents = grammar_documents(count, seed=stories_seed)
        words = sorted({word for document in documents for sentence in document
                        for word in sentence.split()})
        rows = []
        for document in documents:
            start = rng.randrange(len(document) - 1)
            pair = [sentence.split() for sentence in document[start:start + 2]]
            label = int(rng.random() < 0.5)
            if not label:
                sentence = rng.choice(pair)
                at = rng.randrange(len(sentence))
                sentence[at] = rng.choice([w for w in words if w != sentence[at]])
            rows.append([" ".join(pair[0]), " ".join(pair[1]), label])
        _write(folder, split, ["text_a", "text_b", "label"], rows)
    return folder


_ACCENTED = str.maketrans("aeiou", "áéïöü")


def _styled(word, rng):
    """`word` as running text writes it (two words in five): capitalized,
    accented, possessive or hyphenated."""
    style = rng.randrange(10)
    if style == 0:
        return word.capitalize()
    if style == 1:
        return word.translate(_ACCENTED)
    if style == 2:
        return word + "'s"
    if style == 3:
        return word + "-" + word.upper()
    return word


def long_reading_examples(count, seed, sentences=15, unanswerable_fraction=0.25, styled=True):
    """`tasks.data.squad.synthetic_examples`' reading task ("what follows |
    precedes MARKER ?") over long contexts: `sentences` sentences (three or
    more windows at sequence length 32), the marker sentence last, so the
    answer sits in the last window; words, answers included, written with
    capitals, accents, apostrophes and hyphens ("Moon", "snöw", "tree's",
    "fish-FISH") when `styled`. A fraction of the questions have no marker
    sentence."""
    from tasks.data import squad

    rng = random.Random(seed)
    style = _styled if styled else (lambda word, rng: word)  # plain: the task's own spelling
    examples = []
    for index in range(count):
        words = []
        for _ in range(sentences - 1):
            words += [style(rng.choice(squad.FILLERS), rng)
                      for _ in range(rng.randint(2, 5))] + ["."]
        marker = rng.choice(squad.MARKERS)
        follows = rng.random() < 0.5
        impossible = rng.random() < unanswerable_fraction
        before = [style(rng.choice(squad.FILLERS), rng) for _ in range(rng.randint(1, 2))]
        after = [style(rng.choice(squad.FILLERS), rng) for _ in range(rng.randint(1, 2))]
        first = len(words) + (len(before) + 1 if follows else 0)
        if not impossible:
            words += before + [marker] + after + ["."]
        context = " ".join(words)
        example = dict(id=f"long-{'styled' if styled else 'plain'}-{seed}-{index}",
                       question=f"what {'follows' if follows else 'precedes'} {marker} ?",
                       context=context, answers=[], answer_starts=[], is_impossible=impossible)
        if not impossible:
            text = " ".join(after if follows else before)
            start = len(" ".join(words[:first] + [""]))
            assert context[start:start + len(text)] == text
            example.update(answers=[text], answer_starts=[start])
        examples.append(example)
    return examples
