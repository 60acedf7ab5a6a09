"""The report tables: fixed-width text and Markdown."""

import numpy as np
import pandas as pd

from mtrec.evaluation.tables import TABLE_COLUMNS, format_table, markdown_table


def report():
    # as mtrec.evaluate returns it: one row per task, NaN where a kind has
    # no such metric, and columns the tables leave out (mean_prediction)
    return pd.DataFrame(
        {"kind": ["binary", "regression"], "count": [300, 300],
         "auc": [0.812345, np.nan], "mean_prediction": [0.4, np.nan],
         "rmse": [np.nan, 1.5], "logloss": [0.5, np.nan]},
        index=pd.Index(["click", "spend"], name="task"))


def test_markdown_table():
    assert markdown_table(report()).splitlines() == [
        "| task | kind | count | auc | logloss | rmse |",
        "|---|---|---|---|---|---|",
        "| click | binary | 300 | 0.8123 | 0.5000 |  |",
        "| spend | regression | 300 |  |  | 1.5000 |",
    ]


def test_format_table():
    lines = format_table(report()).splitlines()
    assert lines[0].split() == ["kind", "count", "auc", "logloss", "rmse"]
    assert lines[1].split() == ["task"]
    assert lines[2].split() == ["click", "binary", "300", "0.8123", "0.5000", "NaN"]
    assert lines[3].split() == ["spend", "regression", "300", "NaN", "NaN", "1.5000"]


def test_columns_follow_the_table_order():
    frame = report()[["rmse", "auc", "kind"]]
    header = markdown_table(frame).splitlines()[0]
    assert header == "| task | kind | auc | rmse |"
    assert [c for c in TABLE_COLUMNS if c in frame.columns] == ["kind", "auc", "rmse"]
