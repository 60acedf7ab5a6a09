"""Data pipelines and dataset loaders."""

from mtrec.data import (ali_ccp, aliexpress, census_income, clothing_reviews, leakage, movielens,
                        registry, streaming, synthetic)
from mtrec.data.leakage import LeakageWarning, check_leakage
from mtrec.data.pandas_dataset import encode_features, from_pandas
from mtrec.data.streaming import from_csv, from_frames, from_parquet, schema_sample
from mtrec.data.registry import DatasetSplits, load_dataset, register_dataset

__all__ = ["ali_ccp", "aliexpress", "clothing_reviews", "synthetic", "leakage", "movielens", "streaming", "check_leakage",
           "LeakageWarning", "from_csv", "from_frames", "from_parquet", "schema_sample", "registry", "DatasetSplits", "load_dataset", "register_dataset", "census_income", "encode_features", "from_pandas"]
