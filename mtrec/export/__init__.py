"""Export for serving, and batch scoring of files with a saved model."""

from mtrec.export.saved_model import (
    EXAMPLE_SIGNATURE, example_parsing_spec, raw_input_signature, read_export_schema, saved_model,
    serving_input_names, to_tf_examples)
from mtrec.export.packed_inputs import PACKED_SIGNATURE, pack_features, packed_layout
from mtrec.export.file_scoring import load_model, load_scorer, predict_file
from mtrec.export.serving import export_for_serving, next_version, write_warmup_requests

__all__ = ["EXAMPLE_SIGNATURE", "PACKED_SIGNATURE", "example_parsing_spec", "pack_features",
           "packed_layout", "raw_input_signature", "read_export_schema",
           "saved_model", "serving_input_names",
           "to_tf_examples", "export_for_serving", "load_model", "load_scorer", "next_version",
           "predict_file", "write_warmup_requests"]
