"""Attention maps of a text backbone: the probabilities, a PNG grid, an HTML page.

`attention_maps` runs one text (or pair) through a backbone built with
`return_attention_scores=True` and keeps the real tokens (input_mask == 1).
`write_png` draws every layer and head as a heatmap, for reports;
`write_html` writes one self-contained page (inline CSS, JS and data, no
network) that shows one layer and head at a time as lines between tokens,
for exploring. `python -m tasks.visualize` is the command line over them.

Indices: the functions take 0-based `layer` / `head` (they index arrays);
everything a person reads (panel titles, the page's selectors) counts from 1.
"""

import html
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


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>attention</title>
<style>
  body { font: 14px system-ui, sans-serif; color: #222; background: #fff; margin: 16px; }
  header { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  h1 { font-size: 18px; margin: 0; }
  .hint { color: #555; margin: 8px 0 12px; max-width: 60em; }
  svg text { font: 13px ui-monospace, monospace; fill: #222; cursor: default; }
  svg text.active { font-weight: bold; }
  .attention-line { stroke: __COLOR__; }
  svg.focus .attention-line { opacity: 0.06; }
  svg.focus .attention-line.active { opacity: 1; }
</style>
</head>
<body>
<header>
  <h1>__HEADING__</h1>
  <label>layer <select id="layer"></select></label>
  <label>head <select id="head"></select></label>
  <span id="summary"></span>
</header>
<p class="hint">Left: query tokens (attending from). Right: key tokens (attended to).
A line joins every pair whose weight is above __THRESHOLD__; its opacity and width grow
with the weight. Hover a token to see only its lines; hover a line for its weight.</p>
<svg id="view" xmlns="http://www.w3.org/2000/svg"></svg>
<script id="attention-data" type="application/json">__DATA__</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("attention-data").textContent);
  var tokens = data.tokens, probs = data.probs, n = tokens.length;
  var SVG = "http://www.w3.org/2000/svg", ROW = 22, TOP = 14, GAP = 320;
  var longest = tokens.reduce(function (m, t) { return Math.max(m, t.length); }, 1);
  var column = Math.max(60, 8 * longest + 12);
  var x1 = column + 8, x2 = x1 + GAP;
  var svg = document.getElementById("view");
  var layerSelect = document.getElementById("layer");
  var headSelect = document.getElementById("head");

  function fill(select, count, selected) {
    for (var i = 0; i < count; i++) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = String(i + 1);
      select.appendChild(option);
    }
    select.value = String(selected);
  }

  function element(name, attributes) {
    var node = document.createElementNS(SVG, name);
    for (var key in attributes) node.setAttribute(key, attributes[key]);
    return node;
  }

  function y(i) { return TOP + i * ROW + ROW / 2; }

  function focus(side, index) {
    svg.classList.toggle("focus", index !== null);
    svg.querySelectorAll(".attention-line").forEach(function (line) {
      line.classList.toggle("active", index !== null && line.dataset[side] === String(index));
    });
    svg.querySelectorAll("text").forEach(function (text) {
      text.classList.toggle("active", index !== null && text.dataset.side === side &&
                            text.dataset.index === String(index));
    });
  }

  function render() {
    var layer = Number(layerSelect.value), head = Number(headSelect.value);
    var weights = probs[layer][head], count = 0;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("width", String(x2 + column + 8));
    svg.setAttribute("height", String(2 * TOP + n * ROW));
    var lines = element("g", {});
    for (var i = 0; i < n; i++) {
      for (var j = 0; j < n; j++) {
        var weight = weights[i][j];
        if (!(weight > data.threshold)) continue;
        var line = element("line", {
          "class": "attention-line", x1: x1, y1: y(i), x2: x2, y2: y(j),
          "stroke-opacity": weight.toFixed(4), "stroke-width": (1 + 3 * weight).toFixed(3),
          "data-from": i, "data-to": j});
        var tip = element("title", {});
        tip.textContent = tokens[i] + " \\u2192 " + tokens[j] + ": " + weight.toFixed(4);
        line.appendChild(tip);
        lines.appendChild(line);
        count++;
      }
    }
    svg.appendChild(lines);
    [["from", x1 - 6, "end"], ["to", x2 + 6, "start"]].forEach(function (side) {
      tokens.forEach(function (token, index) {
        var text = element("text", {x: side[1], y: y(index), "text-anchor": side[2],
                                    "dominant-baseline": "middle", "data-side": side[0],
                                    "data-index": index});
        text.textContent = token;
        text.addEventListener("mouseenter", function () { focus(side[0], index); });
        text.addEventListener("mouseleave", function () { focus(side[0], null); });
        svg.appendChild(text);
      });
    });
    document.getElementById("summary").textContent =
        n + " tokens, " + count + " lines above " + data.threshold;
    document.body.dataset.layer = String(layer + 1);
    document.body.dataset.head = String(head + 1);
    document.body.dataset.lines = String(count);
    document.body.dataset.rendered = "true";
    document.title = "attention: layer " + (layer + 1) + " head " + (head + 1);
  }

  fill(layerSelect, probs.length, data.layer);
  fill(headSelect, probs[0].length, data.head);
  layerSelect.addEventListener("change", render);
  headSelect.addEventListener("change", render);
  render();
})();
</script>
</body>
</html>
"""


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
    page = re.sub(r"__([A-Z]+)__", lambda match: values[match.group(1)], _PAGE)
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    return int((rounded[layer, head] > threshold).sum())
