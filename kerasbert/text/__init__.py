"""Text in the graph: tokenizers, input packing, MLM masking."""
