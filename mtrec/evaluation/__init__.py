"""Evaluation: exact per-task metrics."""

from mtrec.evaluation.report import evaluate, expected_calibration_error, predict_with_labels

__all__ = ["evaluate", "expected_calibration_error", "predict_with_labels"]
