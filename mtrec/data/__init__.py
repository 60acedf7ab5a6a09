"""Data pipelines and dataset loaders."""

from mtrec.data import census_income, registry
from mtrec.data.pandas_dataset import encode_features, from_pandas
from mtrec.data.registry import DatasetSplits, load_dataset, register_dataset

__all__ = ["registry", "DatasetSplits", "load_dataset", "register_dataset", "census_income", "encode_features", "from_pandas"]
