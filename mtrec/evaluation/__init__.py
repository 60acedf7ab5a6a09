"""Evaluation: exact per-task metrics (AUC, GAUC, logloss, calibration, ECE, ...)
and gate diagnostics (how the gates of OMoE, MMoE, CGC and PLE use their experts)."""

from mtrec.evaluation import gate_diagnostics, metrics
from mtrec.evaluation.gate_diagnostics import GateCollapseWarning, GateReport, gates
from mtrec.evaluation.metrics import expected_calibration_error, group_auc
from mtrec.evaluation.report import evaluate, predict_with_labels

__all__ = ["GateCollapseWarning", "GateReport", "evaluate", "expected_calibration_error",
           "gate_diagnostics", "gates", "group_auc", "metrics", "predict_with_labels"]
