"""A synthetic paraphrase set: the sentence_embedding task's embedded default.

Each sentence says five things (who, does what, how, where, when), each
picked from a small set of concepts, and each concept has several wordings
("dog", "hound", "puppy"). A paraphrase says the same five things with other
wordings and, half the time, another word order, so the two texts share
almost no content word: a model can only match them by learning which words
mean the same thing, which is what sentence-embedding training is for. An
untrained encoder ranks them near chance.

The splits use disjoint sets of meanings (the validation sentences were
never seen in training, only their words), and the pairs come labelled for
each Sentence-BERT objective:
  ranking   (text, text_b) paraphrase pairs; the other pairs of a batch are
            the negatives
  softmax   label "paraphrase", "related" (2-3 of 5 things shared) or
            "unrelated" (none shared), as NLI's three classes
  cosine    label = the fraction of the five things the texts share
"""

import itertools
import random

SLOTS = {
    "who": [["the dog", "a hound", "the puppy"], ["the cat", "a kitten", "the feline"],
            ["the child", "a kid", "the youngster"], ["the woman", "a lady", "the madam"],
            ["the man", "a gentleman", "the fellow"], ["the bird", "a sparrow", "the finch"],
            ["the farmer", "a grower", "the rancher"], ["the student", "a pupil", "the learner"]],
    "does": [["runs", "sprints", "races"], ["eats", "devours", "dines"],
             ["sleeps", "naps", "dozes"], ["plays", "frolics", "romps"],
             ["reads", "studies", "browses"], ["sings", "chants", "hums"],
             ["waits", "lingers", "tarries"], ["works", "labors", "toils"]],
    "how": [["quickly", "fast", "rapidly"], ["slowly", "lazily", "sluggishly"],
            ["happily", "cheerfully", "joyfully"], ["quietly", "silently", "softly"]],
    "where": [["in the park", "at the playground", "on the green"],
              ["in the kitchen", "by the stove", "near the oven"],
              ["in the garden", "among the flowers", "by the roses"],
              ["on the beach", "by the sea", "on the shore"],
              ["in the library", "among the books", "by the shelves"],
              ["in the barn", "by the haystack", "near the stable"]],
    "when": [["in the morning", "at dawn", "at sunrise"], ["at night", "after dark", "at midnight"],
             ["at noon", "at midday", "around lunchtime"]],
}
NAMES = tuple(SLOTS)
LABELS = ("paraphrase", "related", "unrelated")
_VALIDATION_MEANINGS = 120


def _meanings(seed=0):
    """Every combination of concepts, shuffled once (a fixed order for every run)."""
    meanings = list(itertools.product(*[range(len(SLOTS[name])) for name in NAMES]))
    random.Random(seed).shuffle(meanings)
    return meanings


def say(meaning, rng, avoid=None):
    """One wording of `meaning`: a word choice per slot (different from
    `avoid`'s, when given), in one of two orders."""
    choices = []
    for slot, concept in zip(NAMES, meaning):
        options = list(range(len(SLOTS[slot][concept])))
        if avoid is not None:
            options.remove(avoid[len(choices)])
        choices.append(rng.choice(options))
    words = [SLOTS[slot][concept][choice] for slot, concept, choice in zip(NAMES, meaning, choices)]
    who, does, how, where, when = words
    text = (f"{who} {does} {how} {where} {when}" if rng.random() < 0.5
            else f"{when} {who} {does} {how} {where}")
    return text[0].upper() + text[1:] + ".", choices


def _shared(a, b):
    return sum(x == y for x, y in zip(a, b))


def _other(meaning, shared, rng):
    """A meaning that shares exactly `shared` of the five slots with `meaning`."""
    keep = set(rng.sample(range(len(NAMES)), shared))
    return tuple(concept if i in keep else rng.choice(
        [c for c in range(len(SLOTS[NAMES[i]])) if c != concept])
        for i, concept in enumerate(meaning))


def pairs(split, objective="ranking", size=None, seed=0):
    """Rows {"text", "text_b"[, "label"]} of `split` ("train" or "validation")."""
    meanings = _meanings()
    chosen = (meanings[_VALIDATION_MEANINGS:] if split == "train"
              else meanings[:_VALIDATION_MEANINGS])
    size = size or (2000 if split == "train" else _VALIDATION_MEANINGS)
    rng = random.Random(f"{split}-{objective}-{seed}")
    rows = []
    for index in range(size):
        meaning = chosen[index % len(chosen)]
        text, choices = say(meaning, rng)
        if objective == "ranking":
            rows.append({"text": text, "text_b": say(meaning, rng, avoid=choices)[0]})
            continue
        kind = rng.choice(LABELS) if objective == "softmax" else None
        shared = {"paraphrase": 5, "related": rng.choice((2, 3)), "unrelated": 0}.get(
            kind, rng.choice(range(6)))
        other = meaning if shared == 5 else _other(meaning, shared, rng)
        text_b = say(other, rng, avoid=choices if shared == 5 else None)[0]
        label = kind if objective == "softmax" else _shared(meaning, other) / len(NAMES)
        rows.append({"text": text, "text_b": text_b, "label": label})
    return rows
