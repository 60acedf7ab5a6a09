"""pandas columns -> the numpy arrays the model's raw inputs take.

Small helpers shared by the feature specs (`features.py`), the inference
rules and the Schema: what counts as missing, which columns hold strings or
lists, and how a column becomes an object array of str.
"""

import numpy as np
import pandas as pd

__all__ = ["FLOAT32_MAX", "first_non_numeric", "is_list_column", "is_missing",
           "is_stringish", "string_values", "to_float32"]

# Labels and numerics travel as float32: beyond its range a value is inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_missing(value):
    """True for a scalar missing value (None, NaN, pd.NA, NaT)."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, np.ndarray, dict, set)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def is_list_column(series):
    """Whether the first (up to 20) non-missing values are all lists/arrays."""
    sample = series.dropna().head(20)
    return len(sample) > 0 and all(
        isinstance(v, (list, tuple, np.ndarray)) for v in sample)


def is_stringish(series):
    """object, string and category dtypes (what strings arrive as)."""
    return (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)
            or isinstance(series.dtype, pd.CategoricalDtype))


def first_non_numeric(series):
    """A value of `series` that `float()` refuses (for error messages)."""
    for value in series.dropna().head(1000):
        try:
            float(value)
        except (TypeError, ValueError):
            return value
    return series.dropna().iloc[0] if series.notna().any() else None


def string_values(series):
    """Object array of str `(rows,)`; missing values (None, NaN, pd.NA) become ""."""
    values = series.astype(object).where(series.notna(), "")
    return values.astype(str).to_numpy(dtype=object)


def to_float32(series):
    """float32 array `(rows,)`; unparsable values and NaN become NaN."""
    with np.errstate(over="ignore"):   # beyond float32: inf, i.e. missing
        return pd.to_numeric(series, errors="coerce").to_numpy(
            dtype=np.float32, na_value=np.nan)
