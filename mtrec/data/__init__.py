"""Data pipelines and dataset loaders."""

from mtrec.data import census_income
from mtrec.data.pandas_dataset import encode_features, from_pandas

__all__ = ["census_income", "encode_features", "from_pandas"]
