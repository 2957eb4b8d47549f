"""Data readers: TFDS names and local files into examples."""
