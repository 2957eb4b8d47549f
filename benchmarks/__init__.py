"""Benchmarks: ratios against a peer measured in the same run (not tests)."""

import json
import os


def write_results(result, path):
    """Writes `result` as JSON to `path` (its folder created); no-op for None."""
    if not path:
        return
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w") as file:
        json.dump(result, file, indent=2)
        file.write("\n")
