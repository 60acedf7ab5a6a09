"""Feature and task specifications, and the Schema that holds them.

A `Schema` is a list of feature specs (what each input column is) and task
specs (what each label is). Specs are small frozen dataclasses without
weights. `Schema.adapt(df)` learns what preprocessing needs from a training
table (vocabularies, normalisation statistics, sequence lengths) and keeps it
in `schema.stats`, so the whole schema, learned state included, serialises
to JSON and rebuilds the identical in-graph preprocessing anywhere.

Modules:
- `features`: the feature specs; each owns its raw dtype, missing value,
  adapt, check and column -> array conversion.
- `task_kinds`: the task-kind table (head activation, loss, metrics,
  monitor, evaluation, label check per kind).
- `tasks`: `TaskSpec`, `funnel_tasks`, `FUNNEL_TASKS`.
- `schema`: `Schema`.
- `inference`: the rules of `Schema.infer`.
- `tokenizer`: the Python twin of the in-graph text standardisation.
- `conversion`, `vector_columns`: pandas -> numpy helpers,
  `collapse_vector_columns`.
"""

from mtrec.schema.features import (
    FEATURE_KINDS, MISSING_INT, MODALITIES, NUMERIC_ENCODINGS, TEXT_ENCODERS, TEXT_POOLINGS,
    Categorical, FeatureSpec, MultiHot, Numeric, Text, Vector)
from mtrec.schema.schema import ENCODED_PREFIX, Schema
from mtrec.schema.task_kinds import TASK_KIND_TABLE, TASK_KINDS, TaskKind, task_kind
from mtrec.schema.tasks import FUNNEL_TASKS, TaskSpec, funnel_tasks
from mtrec.schema.tokenizer import TEXT_STANDARDIZE
from mtrec.schema.vector_columns import collapse_vector_columns

__all__ = ["ENCODED_PREFIX", "FEATURE_KINDS", "FUNNEL_TASKS", "MISSING_INT", "MODALITIES",
           "NUMERIC_ENCODINGS", "TASK_KINDS", "TASK_KIND_TABLE", "TEXT_ENCODERS", "TEXT_POOLINGS",
           "TEXT_STANDARDIZE", "Categorical", "FeatureSpec", "MultiHot", "Numeric", "Schema",
           "TaskKind", "TaskSpec", "Text", "Vector", "collapse_vector_columns",
           "funnel_tasks", "task_kind"]
