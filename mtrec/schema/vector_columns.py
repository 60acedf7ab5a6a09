"""Fixed-width float columns (`img_0` ... `img_63`) -> one Vector column."""

import re

import numpy as np
import pandas as pd

__all__ = ["collapse_vector_columns"]


def collapse_vector_columns(df, prefix, name=None):
    """Collapse fixed-width float columns into one `Vector` column.

    Columns named `<prefix><i>` (`img_0`, `img_1`, ..., `img_63`) become one
    column of float32 arrays, ordered by the integer `i` (so `img_10` comes
    after `img_9`); a row with any NaN becomes None, a missing vector.

    Args:
        df: pandas DataFrame.
        prefix: str. Common prefix of the columns, e.g. `"img_"`.
        name: str. Name of the new column; defaults to `prefix` without
            trailing `_`, `-` or `.` (`"img"`).

    Returns:
        A new DataFrame: the `<prefix><i>` columns replaced, at the place of
        the first one, by the column `name`.

    Example:
        >>> df = collapse_vector_columns(df, "img_")       # img_0..img_63 -> img
        >>> schema = Schema.infer(df, tasks, img=Vector("img", modality="image"))
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"collapse_vector_columns expects a pandas DataFrame, got "
                         f"{type(df).__name__}.")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string such as 'img_', got "
                         f"{prefix!r}.")
    name = name or prefix.rstrip("_-.")
    if not name:
        raise ValueError(f"prefix {prefix!r} leaves no column name; pass name=...")
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    found = sorted((int(m.group(1)), c) for c in df.columns
                   if isinstance(c, str) and (m := pattern.match(c)))
    if not found:
        raise ValueError(
            f"No columns named '{prefix}<i>' (e.g. '{prefix}0') in the data; "
            f"columns: {list(df.columns)[:20]}{'...' if len(df.columns) > 20 else ''}.")
    indices = [i for i, _ in found]
    if indices != list(range(len(found))):
        gaps = sorted(set(range(max(indices) + 1)) - set(indices))[:5]
        raise ValueError(
            f"Columns '{prefix}<i>' must be numbered 0..n-1 without gaps or "
            f"repeats; found indices {indices[:10]}{'...' if len(indices) > 10 else ''}"
            f"{f' (missing {gaps})' if gaps else ''}. Rename the columns so the "
            f"vector order is unambiguous.")
    columns = [c for _, c in found]
    if name in df.columns and name not in columns:
        raise ValueError(f"Column '{name}' already exists; pass another name=.")
    not_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(df[c])]
    if not_numeric:
        raise ValueError(
            f"Columns {not_numeric[:5]} are not numeric "
            f"({df[not_numeric[0]].dtype}); a vector needs float columns. "
            f"Convert them with pd.to_numeric(..., errors='coerce').")
    matrix = df[columns].to_numpy(dtype=np.float32, na_value=np.nan)
    missing = ~np.isfinite(matrix).all(axis=1)
    values = [None if m else row for m, row in zip(missing, matrix)]
    chosen = set(columns)
    first = next(i for i, c in enumerate(df.columns) if c in chosen)
    position = sum(1 for c in list(df.columns)[:first] if c not in chosen)
    out = df.drop(columns=columns)
    out.insert(position, name, pd.Series(values, index=df.index, dtype=object))
    return out
