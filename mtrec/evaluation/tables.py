"""A per-task report (`mtrec.evaluate`'s DataFrame) as text or Markdown.

What `mtrec train` and `mtrec evaluate` print, and what `metrics.md` holds.
"""

import math

import numpy as np
import pandas as pd

__all__ = ["TABLE_COLUMNS", "format_table", "markdown_table"]

# Columns of the printed and Markdown tables, in this order (those present).
TABLE_COLUMNS = ("kind", "count", "positive_rate", "auc", "gauc", "logloss",
                 "calibration", "ece", "rmse", "mae", "accuracy")


def format_table(report):
    """The per-task report as fixed-width text, four decimals.

    Args:
        report: DataFrame, one row per task (as `mtrec.evaluate` returns).

    Returns:
        str.
    """
    columns = _columns(report)
    with pd.option_context("display.width", 160, "display.precision", 4,
                           "display.max_columns", 30):
        return report[columns].to_string(float_format=lambda v: f"{v:.4f}")


def markdown_table(report):
    """The per-task report as a Markdown table (`| task | kind | ... |`);
    missing values are empty cells."""
    columns = _columns(report)
    lines = ["| task | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for task, row in report[columns].iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if isinstance(value, (float, np.floating)):
                cells.append("" if math.isnan(value) else f"{value:.4f}")
            else:
                cells.append("" if pd.isna(value) else str(value))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _columns(report):
    return [c for c in TABLE_COLUMNS if c in report.columns]
