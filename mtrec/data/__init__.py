"""Data pipelines and dataset loaders."""

from mtrec.data import (ali_ccp, aliexpress, census_income, clothing_reviews, leakage, movielens,
                        registry, shard_writer, shards, streaming, synthetic, tfrecord,
                        user_files)
from mtrec.data.leakage import LeakageWarning, check_leakage
from mtrec.data.pandas_dataset import encode_features, from_pandas
from mtrec.data.registry import DatasetSplits, load_dataset, register_dataset
from mtrec.data.shard_writer import write_shards
from mtrec.data.shards import expand_shards, from_files, sharded_frames, worker_shards
from mtrec.data.streaming import from_csv, from_frames, from_parquet, schema_sample
from mtrec.data.tfrecord import from_tfrecord, tfrecord_sample
from mtrec.data.user_files import load_files

__all__ = ["ali_ccp", "aliexpress", "census_income", "clothing_reviews", "leakage", "movielens",
           "registry", "shard_writer", "shards", "streaming", "synthetic", "tfrecord",
           "user_files", "LeakageWarning", "check_leakage", "encode_features", "from_pandas",
           "DatasetSplits", "load_dataset", "register_dataset", "write_shards",
           "expand_shards", "from_files", "sharded_frames", "worker_shards", "from_csv",
           "from_frames", "from_parquet", "schema_sample", "from_tfrecord",
           "tfrecord_sample", "load_files"]
