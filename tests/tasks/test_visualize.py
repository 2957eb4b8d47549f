"""Attention maps: the numbers, the PNG grid read back pixel by pixel, the HTML
page rendered by headless Chromium, and the `python -m tasks.tools.visualize` CLI.

tasks.tools.visualize defines absl flags (as tasks.run does, with the same names),
so its command line runs in subprocesses; this process imports only
tasks.tools.attention_maps.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import zoo
from kerasbert.text import Preprocessor, WordPieceTokenizer
from tasks.tools import attention_maps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
         "a", "dog", "##s", "ran", ".", "where", "did", "go", "?"]
TEXT, TEXT_B = "The cat sat on the mat.", "Where did the dogs go?"
PAIR_TOKENS = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]",
               "where", "did", "the", "dog", "##s", "go", "?", "[SEP]"]
SEQUENCE_LENGTH = 24  # > 17 tokens: the pair is padded, and padding must not show


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder with model.keras + vocab.txt, backbone, preprocessor): a 2 x 2 BERT."""
    import keras

    folder = tmp_path_factory.mktemp("tiny_bert")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    keras.utils.set_random_seed(1)
    backbone = zoo.build("bert_tiny_uncased", num_layers=2, num_heads=2, hidden_size=16,
                         intermediate_size=32, vocab_size=len(VOCAB),
                         max_sequence_length=64, return_attention_scores=True, dropout=0.0,
                         attention_dropout=0.0)
    backbone.save(folder / "model.keras")
    preprocessor = Preprocessor(WordPieceTokenizer(str(folder / "vocab.txt"), lower_case=True),
                                sequence_length=SEQUENCE_LENGTH)
    return folder, backbone, preprocessor


def test_attention_maps_are_the_backbones_probabilities(tiny):
    _, backbone, preprocessor = tiny
    tokens, probs = attention_maps.attention_maps(backbone, preprocessor, TEXT, TEXT_B)
    assert tokens == PAIR_TOKENS
    n = len(tokens)
    assert probs.shape == (2, 2, n, n) and probs.dtype == np.float32

    inputs = preprocessor(tf.constant([TEXT]), tf.constant([TEXT_B]))
    assert int(inputs["input_mask"].numpy().sum()) == n < SEQUENCE_LENGTH
    full = np.stack([layer.numpy()[0] for layer in backbone(inputs)["attention_probs"]])
    np.testing.assert_array_equal(probs, full[:, :, :n, :n])
    # Padding gets no attention, so the real tokens' rows are whole distributions.
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert np.abs(full[:, :, :n, n:]).max() < 1e-6

    single_tokens, single = attention_maps.attention_maps(backbone, preprocessor, TEXT)
    assert single_tokens == PAIR_TOKENS[:9] and single.shape == (2, 2, 9, 9)
    np.testing.assert_allclose(single.sum(axis=-1), 1.0, atol=1e-5)


def _runs(mask):
    """[start, stop) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def test_png_grid_holds_every_probability(tmp_path):
    """Reads the picture back: one coloured panel per layer (rows) and head
    (columns), each cell's colour the viridis colour of its probability."""
    import matplotlib
    from PIL import Image

    num_layers, num_heads, n = 3, 2, 7
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(n, 0.5), size=(num_layers, num_heads, n))
    tokens = ["[CLS]", "where", "is", "the", "cat", "?", "[SEP]"]
    path = tmp_path / "attention.png"
    assert attention_maps.write_png(tokens, probs, str(path)) == num_layers * num_heads

    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    # Viridis is saturated everywhere (max - min channel >= 0.27); text,
    # spines and background are grey.
    coloured = image.max(axis=-1) - image.min(axis=-1) > 0.2
    panel_rows, panel_columns = _runs(coloured.any(axis=1)), _runs(coloured.any(axis=0))
    assert len(panel_rows) == num_layers and len(panel_columns) == num_heads

    viridis = matplotlib.colormaps["viridis"](np.arange(256))[:, :3]
    for layer, (top, bottom) in enumerate(panel_rows):
        for head, (left, right) in enumerate(panel_columns):
            assert bottom - top > 10 * n and abs((bottom - top) - (right - left)) <= 2
            centres_y = (top + (np.arange(n) + 0.5) * (bottom - top) / n).astype(int)
            centres_x = (left + (np.arange(n) + 0.5) * (right - left) / n).astype(int)
            pixels = image[centres_y][:, centres_x]  # [query, key, rgb]
            distances = ((pixels[:, :, None, :] - viridis) ** 2).sum(-1)
            recovered = (distances.argmin(-1) + 0.5) / 256
            np.testing.assert_allclose(recovered, probs[layer, head], atol=0.01)


def test_png_layout_stays_readable_and_bounded():
    panel, font = attention_maps.png_layout(2, 2, 17)
    assert panel >= 2.5 and font == 8.0  # a short pair: big panels, full-size labels
    panel, font = attention_maps.png_layout(12, 12, 128)
    assert panel * 12 <= 24.0 and font == 2.0  # BERT base, a long text: within 2,400 px


def chromium(tmp_path, page, *arguments):
    """Runs headless Chromium on `page` (a file) and returns its stdout."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
         "--force-device-scale-factor=1", "--virtual-time-budget=2000", *arguments,
         page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(tmp_path, page, name):
    from PIL import Image

    path = tmp_path / name
    chromium(tmp_path, page, f"--screenshot={path}", "--window-size=900,700")
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int32)


def line_pixels(image):
    """Pixels tinted by the line colour (#1f5fbf: blue well above red) on white."""
    red, blue = image[..., 0], image[..., 2]
    return (blue - red > 6) & (image.sum(-1) < 3 * 255)


def test_page_draws_the_lines_above_the_threshold(tiny, tmp_path):
    _, backbone, preprocessor = tiny
    tokens, probs = attention_maps.attention_maps(backbone, preprocessor, TEXT, TEXT_B)
    layer, head = 0, 1  # shown as "layer 1 head 2"
    rounded = np.round(probs.astype(np.float64), attention_maps.HTML_DECIMALS)
    threshold = float(np.median(rounded[layer, head]))  # about half the pairs
    expected = int((rounded[layer, head] > threshold).sum())
    assert 0 < expected < len(tokens) ** 2

    page = tmp_path / "attention.html"
    drawn = attention_maps.write_html(tokens, probs, str(page), layer, head, threshold)
    assert drawn == expected
    source = page.read_text()
    assert not re.search(r"<link|\bsrc=|\bhref=|https:|url\(", source)  # self-contained

    dom = chromium(tmp_path, page, "--dump-dom")
    assert "<title>attention: layer 1 head 2</title>" in dom
    assert len(re.findall(r'class="attention-line"', dom)) == expected
    assert f'data-lines="{expected}"' in dom and 'data-rendered="true"' in dom
    shown = re.findall(r'<text [^>]*data-side="from"[^>]*>([^<]*)</text>', dom)
    assert shown == tokens

    with_lines = line_pixels(screenshot(tmp_path, page, "lines.png"))
    attention_maps.write_html(tokens, probs, str(page), layer, head, threshold=1.0)
    assert 'data-lines="0"' in chromium(tmp_path, page, "--dump-dom")
    without_lines = line_pixels(screenshot(tmp_path, page, "no_lines.png"))
    assert without_lines.sum() == 0
    # The lines fill the band between the token columns: hundreds of tinted
    # pixels spanning the 320 px gap.
    columns = np.flatnonzero(with_lines.any(axis=0))
    assert with_lines.sum() > 1000 and columns.max() - columns.min() >= 300


def test_page_escapes_tokens(tmp_path):
    tokens = ["[CLS]", "</script>", "a&amp;b", "<b>", "[SEP]"]
    probs = np.full((1, 1, 5, 5), 0.2)
    page = tmp_path / "escaped.html"
    assert attention_maps.write_html(tokens, probs, str(page), threshold=0.1) == 25
    dom = chromium(tmp_path, page, "--dump-dom")
    assert len(re.findall(r'class="attention-line"', dom)) == 25
    shown = re.findall(r'<text [^>]*data-side="to"[^>]*>([^<]*)</text>', dom)
    assert shown == ["[CLS]", "&lt;/script&gt;", "a&amp;amp;b", "&lt;b&gt;", "[SEP]"]


def run_cli(*flags):
    return subprocess.Popen([sys.executable, "-m", "tasks.tools.visualize", *flags], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_command_line(tiny, tmp_path):
    folder, backbone, preprocessor = tiny
    out = tmp_path / "out"
    # Both commands at once: each spends most of its time importing TensorFlow.
    saved = run_cli(f"--model={folder / 'model.keras'}", f"--text={TEXT}",
                    f"--text_b={TEXT_B}", f"--out={out}", "--layer=1", "--head=2",
                    f"--sequence_length={SEQUENCE_LENGTH}")
    preset = run_cli("--model=bert_test_tiny", "--text=hi", f"--out={tmp_path / 'preset'}")
    stdout, stderr = saved.communicate(timeout=240)
    assert saved.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout[stdout.index("{"):])
    assert summary["tokens"] == PAIR_TOKENS
    assert (summary["num_layers"], summary["num_heads"], summary["panels"]) == (2, 2, 4)
    assert summary["initial_view"]["layer"] == 1 and summary["initial_view"]["head"] == 2
    assert summary["png"] == str(out / "attention.png")

    from PIL import Image

    with Image.open(out / "attention.png") as image:
        assert image.format == "PNG" and min(image.size) > 300
    page = (out / "attention.html").read_text()
    data = json.loads(re.search(r'<script id="attention-data" type="application/json">'
                                r"(.*?)</script>", page, re.S).group(1))
    assert data["tokens"] == PAIR_TOKENS and (data["layer"], data["head"]) == (0, 1)
    # The reloaded model.keras gives the numbers of the model that was saved.
    _, probs = attention_maps.attention_maps(backbone, preprocessor, TEXT, TEXT_B)
    np.testing.assert_allclose(data["probs"], probs, atol=1e-4)

    stdout, stderr = preset.communicate(timeout=240)
    assert preset.returncode != 0
    assert "--model=bert_test_tiny is a preset" in stderr and "--vocab_file" in stderr
    assert not (tmp_path / "preset").exists()
