"""The rules `Schema.infer` uses to pick a feature kind for a column."""

import re

import numpy as np
import pandas as pd

from mtrec.schema.conversion import is_list_column, is_stringish
from mtrec.schema.features import Categorical, MultiHot, Numeric, Text, Vector

__all__ = ["infer_spec", "names_an_id"]


def names_an_id(name):
    """Whether a column name ends in the word "id": the whole name, after a
    separator (`user_id`, `item-id`, `user.id`) or camel case (`itemId`,
    `itemID`); `paid` and `valid` are not ids."""
    return bool(re.search(r"(^|[_\-\s.])id$", name, flags=re.IGNORECASE)
                or re.search(r"[a-z0-9](Id|ID)$", name))


def infer_spec(column, series):
    """The feature spec for one pandas column (see `Schema.infer` for the rules).

    Raises:
        ValueError naming the column when no kind fits its dtype.
    """
    if is_list_column(series):
        first = next(iter(series.dropna()))
        if len(first) and all(isinstance(v, (int, float, np.number)) for v in first):
            return Vector(column, dim=len(first))
        return MultiHot(column)
    if pd.api.types.is_bool_dtype(series):
        return Categorical(column)
    if is_stringish(series):
        values = series.dropna().astype(str)
        if len(values):
            # long free text: many words per value, mostly distinct values
            words = values.head(2000).str.split().str.len().mean()
            distinct = values.nunique() / len(values)
            if words > 4 and distinct > 0.2:
                return Text(column)
        return Categorical(column)
    if pd.api.types.is_integer_dtype(series):
        if names_an_id(str(column)):
            return Categorical(column, dtype="int64")
        return Numeric(column)
    if pd.api.types.is_float_dtype(series):
        return Numeric(column)
    raise ValueError(
        f"Cannot infer a feature kind for column '{column}' of dtype "
        f"{series.dtype}; pass an explicit spec, e.g. "
        f"Schema.infer(df, tasks, **{{'{column}': Categorical('{column}')}}), "
        f"or exclude it.")
