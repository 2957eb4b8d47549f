"""SavedModels for TF Serving: raw text or image bytes in, named outputs out.

    from export import export_model
    export_model("runs/sst2", "exports/sst2")       # -> exports/sst2/1
    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2 [--version=N]
"""

from export.saved_model import export_model, load_for_serving, next_version
from export.spec import ServingSpec, read_spec, write_spec

__all__ = ["ServingSpec", "export_model", "load_for_serving", "next_version", "read_spec",
           "write_spec"]
