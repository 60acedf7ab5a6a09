"""Evaluation: exact per-task metrics (AUC, GAUC, logloss, calibration, ECE, ...),
gate diagnostics (how the gates of OMoE, MMoE, CGC and PLE use their experts)
and the report tables (text and Markdown)."""

from mtrec.evaluation import gate_diagnostics, metrics, tables
from mtrec.evaluation.gate_diagnostics import GateCollapseWarning, GateReport, gates
from mtrec.evaluation.metrics import expected_calibration_error, group_auc
from mtrec.evaluation.report import evaluate, predict_with_labels
from mtrec.evaluation.tables import format_table, markdown_table

__all__ = ["GateCollapseWarning", "GateReport", "evaluate", "expected_calibration_error",
           "format_table", "gate_diagnostics", "gates", "group_auc", "markdown_table",
           "metrics", "predict_with_labels", "tables"]
