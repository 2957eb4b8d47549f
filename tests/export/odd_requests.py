"""Odd requests to every kind's `serving_default`, and what each must get.

tests/export/test_export.py sends them in the one fresh process that calls
every kind's export (tests/tasks/test_multiple_choice.py: the choice kind's,
`choice_calls`) (calls named "serving_default:<request>[:<input>]", each
error recorded: export.verify's record_errors). The rule: an answer where
one is meaningful, with the regular outputs' names, shapes and finite
numbers; TensorFlow's InvalidArgumentError naming the problem where none is
(bytes that are no image); never a crash, a hang, an error of another type
or a non-finite output.

Text (each odd batch in one text input, the other input holding plain
text): invalid UTF-8 reads as Python's bytes.decode(errors="replace") reads
it; NUL bytes, empty strings and a huge text (1 MB; 100 KB for question
answering, where a context that long makes some 9,000 windows) are
answered; an empty batch gets empty outputs and a batch of 256 texts the
answers each text gets alone; the text after a NUL is read (two texts that
differ only after a NUL get different answers).
Images: corrupt bytes are refused; a 1x1, a 4000x3000, a grayscale, an RGBA,
a 16-bit PNG and an animated GIF (its first frame) each get the answer of
the RGB picture they show.
"""

import io

import numpy as np
import tensorflow as tf

from export.verify import CallError

TOLERANCE = 1e-5
INVALID_UTF8 = [b"\xff\xfe abc", b"a lone \x80 continuation byte", b"truncated \xe2\x82",
                b"\xc3", b"a surrogate \xed\xa0\x80 in UTF-8"]
# How Python's bytes.decode(errors="replace") reads them: the export answers the same.
REPLACED = [text.decode("utf-8", "replace").encode() for text in INVALID_UTF8]
# The last two differ only after a NUL (see text_after_nul_changes_the_answer).
NUL = [b"a\x00b", b"\x00", b"nul \x00 inside \x00\x00 a text", b"x\x00 one two",
       b"x\x00 three four"]
EMPTY = [b"", b"", b" ", b"\t\n"]
SENTENCE = b"Paris and London, then Tokyo: the model reads a long text. "
HUGE = SENTENCE * (2**20 // len(SENTENCE))  # 1 MB
HUGE_QA = SENTENCE * 1700  # 100 KB: as a context, some 9,000 windows of 24 tokens
LARGE_BATCH = 256


def text_calls(regular, context=None):
    """{call name: inputs} of the odd text requests to an export whose
    regular serving_default inputs are `regular` ({input: texts}); `context`:
    the input holding a question-answering context."""
    huge = HUGE if context is None else HUGE_QA
    calls = {}
    for field in regular:
        for request, texts in (("invalid_utf8", INVALID_UTF8 + REPLACED), ("nul", NUL),
                               ("empty_strings", EMPTY), ("huge", [huge, b"a short text"])):
            calls[f"serving_default:{request}:{field}"] = {
                name: np.array(texts if name == field else [b"a plain text"] * len(texts),
                               dtype=object) for name in regular}
    calls["serving_default:empty_batch"] = {name: np.array([], dtype=object)
                                            for name in regular}
    calls["serving_default:large_batch"] = {name: tiled(texts) for name, texts in
                                            regular.items()}
    return calls


def choice_calls(texts, choices):
    """text_calls for the multiple-choice kind: `texts` [b] and `choices`
    [b, n], the odd strings as the text (with a regular row's choices) or as
    every choice (with a plain text)."""
    number = choices.shape[1]
    calls = {}
    for request, odd_texts in (("invalid_utf8", INVALID_UTF8 + REPLACED), ("nul", NUL),
                               ("empty_strings", EMPTY), ("huge", [HUGE, b"a short text"])):
        rows = len(odd_texts)
        calls[f"serving_default:{request}:text"] = {
            "text": np.array(odd_texts, dtype=object),
            "choices": np.array([list(choices[0])] * rows, dtype=object)}
        calls[f"serving_default:{request}:choices"] = {
            "text": np.array([b"a plain text"] * rows, dtype=object),
            "choices": np.array([[text] * number for text in odd_texts], dtype=object)}
    calls["serving_default:empty_batch"] = {"text": np.array([], dtype=object),
                                            "choices": np.empty((0, number), dtype=object)}
    calls["serving_default:large_batch"] = {"text": tiled(texts), "choices": tiled(choices)}
    return calls


def tiled(values):
    """The regular batch repeated to LARGE_BATCH rows."""
    return np.resize(np.asarray(values), (LARGE_BATCH,) + np.shape(values)[1:])


def check_text_answers(calls, outputs, context=None):
    """Every odd text call answered: the regular outputs' names, shapes per
    row and finite numbers; invalid UTF-8 answered as its replacement; a
    large batch as its texts alone; answers read from their contexts."""
    regular = outputs["serving_default"]
    for call, inputs in odd(calls):
        result = outputs[call]
        assert not isinstance(result, CallError), f"{call}: {result}"
        check_shapes(call, result, regular, len(next(iter(inputs.values()))))
        request = call.split(":")[1]
        if request == "invalid_utf8":
            half = len(INVALID_UTF8)
            assert_rows_equal(call, {name: value[:half] for name, value in result.items()},
                              {name: value[half:] for name, value in result.items()})
        if request == "large_batch":
            assert_rows_equal(call, result, {name: tiled(value)
                                             for name, value in regular.items()})
        if context is not None:
            check_answers_are_read_from_contexts(call, result, inputs[context])


def check_answers_are_read_from_contexts(call, result, contexts):
    """The answer is the context's characters [start, end), "" (and -1) for
    an empty context; characters as Python reads the bytes (errors="replace")."""
    for answer, start, end, context in zip(result["answer"], result["answer_char_start"],
                                           result["answer_char_end"], contexts):
        if isinstance(context, bytes):
            context = context.decode("utf-8", "replace")
        assert answer.decode() == (context[start:end] if start >= 0 else ""), call
        if not context.strip():
            assert start == end == -1, call


def text_after_nul_changes_the_answer(calls, outputs):
    """The two texts that differ only after a NUL get different answers."""
    for call, _ in odd(calls):
        if call.split(":")[1] == "nul":
            result = outputs[call]
            assert any(not np.array_equal(value[-2], value[-1]) for value in result.values()), (
                f"{call}: the text after a NUL is not read")


def png(pixels, dtype=tf.uint8):
    return tf.io.encode_png(tf.constant(pixels, dtype)).numpy()


def jpeg(pixels):
    return tf.io.encode_jpeg(tf.constant(pixels, tf.uint8)).numpy()


def animated_gif(frames):
    """A GIF89a of the frames (at most 256 colors each, so they stay exact)."""
    from PIL import Image  # pillow: TensorFlow's tensorboard requires it

    images = [Image.fromarray(frame.astype(np.uint8)) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return buffer.getvalue()


# Refused: InvalidArgumentError with these words in its message.
IMAGE_ERRORS = {"random_bytes": "Unknown image file format", "empty_bytes": "Input is empty",
                "truncated_png": "Invalid PNG data", "truncated_jpeg": "Invalid JPEG data",
                "one_corrupt_image_in_a_batch": "Unknown image file format"}


def image_calls(regular, height, width):
    """{call name: inputs}: corrupt images (refused), and odd images each
    batched with a plain RGB PNG of the picture it shows (answered alike);
    `regular`: the regular serving_default's encoded images."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (height + 3, width + 5, 4))
    rgb = pixels[..., :3]
    wide = rng.integers(0, 65536, (height, width, 3))
    palette = np.array([[255, 0, 0], [0, 128, 0], [0, 0, 255], [250, 250, 250]])
    frames = palette[rng.integers(0, 4, (3, height, width))]
    # One color: the JPEG decodes to one (nearly the same) color at any size.
    color = np.array([200, 120, 40], np.uint8)
    pairs = {
        "one_pixel": (png(rgb[:1, :1]), png(np.broadcast_to(rgb[:1, :1], (height, width, 3)))),
        "huge_jpeg": (jpeg(np.broadcast_to(color, (3000, 4000, 3))),
                      jpeg(np.broadcast_to(color, (30, 40, 3)))),
        "grayscale": (png(rgb[..., :1]), png(np.repeat(rgb[..., :1], 3, axis=-1))),
        "gray_and_alpha": (png(pixels[..., :2]), png(np.repeat(pixels[..., :1], 3, axis=-1))),
        "rgba": (png(pixels), png(rgb)),  # the alpha channel dropped
        "16_bit": (png(wide, tf.uint16), png(wide >> 8)),  # the high byte
        "animated_gif": (animated_gif(frames), png(frames[0])),  # the first frame
    }
    good, good_jpeg = png(rgb), jpeg(rgb)
    refused = {"random_bytes": [rng.bytes(64)], "empty_bytes": [b""],
               "truncated_png": [good[:len(good) // 2]],
               "truncated_jpeg": [good_jpeg[:len(good_jpeg) // 2]],
               "one_corrupt_image_in_a_batch": [good, b"not an image"]}
    calls = {f"serving_default:{name}": list(pair) for name, pair in pairs.items()}
    calls.update({f"serving_default:{name}": images for name, images in refused.items()})
    calls["serving_default:empty_batch"] = []
    calls["serving_default:large_batch"] = tiled(regular)
    return {call: {"image_bytes": np.array(images, dtype=object)}
            for call, images in calls.items()}


def check_image_answers(calls, outputs):
    """Corrupt images refused with the error IMAGE_ERRORS names; every other
    odd call answered: shapes, finite numbers, each odd image as its pair."""
    regular = outputs["serving_default"]
    for call, inputs in odd(calls):
        result, request = outputs[call], call.split(":")[1]
        if request in IMAGE_ERRORS:
            assert isinstance(result, CallError), f"{call}: answered, not refused"
            assert result.type == "InvalidArgumentError", (call, result)
            assert IMAGE_ERRORS[request] in result.message, (call, result)
            continue
        assert not isinstance(result, CallError), f"{call}: {result}"
        check_shapes(call, result, regular, len(inputs["image_bytes"]))
        if request == "large_batch":
            assert_rows_equal(call, result, {name: tiled(value)
                                             for name, value in regular.items()})
        elif request != "empty_batch":  # the odd image answered as its plain picture
            assert_rows_equal(call, {name: value[:1] for name, value in result.items()},
                              {name: value[1:] for name, value in result.items()})


def odd(calls):
    """The odd calls: [(name, inputs)]."""
    return [(call, inputs) for call, inputs in calls.items() if ":" in call]


def check_shapes(call, result, regular, rows):
    assert sorted(result) == sorted(regular), call
    for name, value in result.items():
        assert value.shape == (rows,) + regular[name].shape[1:], (call, name, value.shape)
        if value.dtype.kind == "f":
            assert np.isfinite(value).all(), (call, name)


def assert_rows_equal(call, actual, expected):
    for name, value in actual.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(value, expected[name], atol=TOLERANCE,
                                       err_msg=f"{call}: {name}")
        else:
            np.testing.assert_array_equal(value, expected[name], err_msg=f"{call}: {name}")
