"""Attention maps of a text backbone: the probabilities, a PNG grid, an HTML page.

`attention_maps` runs one text (or pair) through a backbone built with
`return_attention_scores=True` and keeps the real tokens (input_mask == 1).
`write_png` draws every layer and head as a heatmap, for reports;
`write_html` writes one self-contained page (inline CSS, JS and data, no
network) that shows one layer and head at a time as lines between tokens,
for exploring. `python -m tasks.tools.visualize` is the command line over them.

Indices: the functions take 0-based `layer` / `head` (they index arrays);
everything a person reads (panel titles, the page's selectors) counts from 1.
"""

import html
import importlib.resources
import json
import re

import numpy as np

HTML_DECIMALS = 4  # the page stores probabilities rounded to this many decimals
LINE_COLOR = "#1f5fbf"  # the page's line colour (tests look for it in screenshots)


def attention_maps(backbone, preprocessor, text, text_b=None):
    """(tokens, probs): the real tokens of `text` (+ `text_b`) and float32
    probs [layers, heads, tokens, tokens], query token by key token.

    backbone: a text backbone whose outputs hold `attention_probs` (built or
    loaded with `return_attention_scores=True`). preprocessor: strings ->
    the three inputs, with a `vocabulary` (kerasbert.text.Preprocessor).
    """
    import tensorflow as tf

    texts = [tf.constant([text])] + ([] if text_b is None else [tf.constant([text_b])])
    inputs = preprocessor(*texts)
    outputs = backbone(inputs, training=False)
    if not isinstance(outputs, dict) or "attention_probs" not in outputs:
        raise ValueError("The backbone returns no attention_probs: build or load it with "
                         "return_attention_scores=True.")
    real = np.flatnonzero(np.asarray(inputs["input_mask"])[0] == 1)
    ids = np.asarray(inputs["input_word_ids"])[0, real]
    tokens = [preprocessor.vocabulary.id_to_token(int(i)) for i in ids]
    probs = np.stack([np.asarray(tf.cast(layer, tf.float32))[0]
                      for layer in outputs["attention_probs"]])
    return tokens, probs[:, :, real][:, :, :, real]


def _check(tokens, probs):
    probs = np.asarray(probs)
    if probs.ndim != 4 or probs.shape[2:] != (len(tokens), len(tokens)):
        raise ValueError(f"probs must be [layers, heads, {len(tokens)}, {len(tokens)}] for "
                         f"{len(tokens)} tokens, got {probs.shape}.")
    return probs


def png_layout(num_layers, num_heads, num_tokens):
    """(panel inches, tick font points): panels big enough to read a few
    dozen tokens, the whole grid within ~24 inches (2,400 px) for 12 x 12."""
    panel = float(np.clip(0.16 * num_tokens, 1.6, 3.2))
    panel = min(panel, 24.0 / max(num_layers, num_heads))
    cell_points = panel * 72.0 / max(num_tokens, 1)
    return panel, float(np.clip(0.8 * cell_points, 2.0, 8.0))


def write_png(tokens, probs, path, dpi=100):
    """A grid of heatmaps, one row per layer and one column per head, to `path`.

    Every panel shares the colour scale (viridis, 0 to 1) so heads compare
    at a glance; query tokens run down the y axis, key tokens along the x
    axis, labelled on the outer panels only. Returns the number of panels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    probs = _check(tokens, probs)
    num_layers, num_heads, num_tokens = probs.shape[:3]
    panel, font = png_layout(num_layers, num_heads, num_tokens)
    label_inches = 0.1 + font / 72.0 * 0.6 * max(len(t) for t in tokens)
    figure = Figure(figsize=(num_heads * panel + label_inches + 0.3,
                             num_layers * (panel + 0.3) + label_inches + 0.5),
                    dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(num_layers, num_heads, squeeze=False)
    positions = np.arange(num_tokens)
    for layer in range(num_layers):
        for head in range(num_heads):
            ax = axes[layer, head]
            ax.imshow(probs[layer, head], cmap="viridis", vmin=0.0, vmax=1.0,
                      interpolation="nearest", aspect="equal")
            ax.set_title(f"layer {layer + 1} head {head + 1}", fontsize=9)
            # Tick labels on the outer panels only: inner ones would repeat
            # them, and 2 x n ticks on each of 144 panels take a minute to lay out.
            if layer == num_layers - 1:
                ax.set_xticks(positions, tokens, rotation=90, fontsize=font)
            else:
                ax.set_xticks([])
            if head == 0:
                ax.set_yticks(positions, tokens, fontsize=font)
            else:
                ax.set_yticks([])
            ax.tick_params(length=0, pad=1)
    figure.suptitle("attention probabilities, 0 (dark) to 1 (yellow)\n"
                    "rows: query tokens, columns: key tokens", fontsize=9)
    figure.savefig(path, dpi=dpi, facecolor="white")
    return len(figure.axes)


# The page's HTML, CSS and JS; __NAME__ marks are filled in by write_html.
_PAGE_FILE = "attention_page.html"


def _script_json(value):
    """JSON safe inside a <script> element: no "</script>", no HTML entities."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_html(tokens, probs, path, layer=-1, head=0, threshold=0.05,
               heading="Attention"):
    """One self-contained page to `path`, first showing `layer`/`head` (0-based;
    -1 the last). Lines join pairs with weight > `threshold` (after rounding
    to HTML_DECIMALS), each an SVG line of class `attention-line`; once drawn
    the page sets `document.title` and `<body data-rendered data-lines>`.
    Returns the number of lines of the first view.
    """
    probs = _check(tokens, probs)
    num_layers, num_heads = probs.shape[:2]
    layer = range(num_layers)[layer]  # IndexError names a bad index
    head = range(num_heads)[head]
    rounded = np.round(probs.astype(np.float64), HTML_DECIMALS)
    data = {"tokens": [str(t) for t in tokens], "probs": rounded.tolist(),
            "layer": layer, "head": head, "threshold": float(threshold)}
    values = {"COLOR": LINE_COLOR, "HEADING": html.escape(heading),
              "THRESHOLD": html.escape(f"{threshold:g}"), "DATA": _script_json(data)}
    template = importlib.resources.files("tasks.tools").joinpath(_PAGE_FILE).read_text("utf-8")
    page = re.sub(r"__([A-Z]+)__", lambda match: values[match.group(1)], template)
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    return int((rounded[layer, head] > threshold).sum())
