"""Evaluation: exact per-task metrics (AUC, GAUC, logloss, calibration, ECE, ...)."""

from mtrec.evaluation import metrics
from mtrec.evaluation.metrics import expected_calibration_error, group_auc
from mtrec.evaluation.report import evaluate, predict_with_labels

__all__ = ["evaluate", "expected_calibration_error", "group_auc", "metrics",
           "predict_with_labels"]
