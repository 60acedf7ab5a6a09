"""Adapting a schema in one streaming pass over data larger than memory.

`Schema.adapt(df)` needs the whole training table in one DataFrame. For
shards that do not fit, `adapt_from_frames(schema, frames)` reads the
DataFrame chunks of the training files once, in order, and learns:

- **exactly, over every row**: the vocabularies of `Categorical`,
  `MultiHot` and `Text` features (token counts summed over the chunks,
  then `max_tokens` / `min_frequency` applied as `adapt` does), the
  longest multi-hot row and the text-length percentile (from an exact
  histogram of lengths), `Numeric` mean / variance / min / max (summed
  moments, Chan et al.'s parallel update, float64), each multiclass
  task's number of classes and each task's count of labelled rows;
- **from a uniform random sample of `sample_rows` rows** (every row of the
  stream equally likely, a seeded reservoir): whatever else a feature
  learns (a `Vector`'s dimension and norms, quantile bin edges), and the
  constant / all-missing feature warnings.

So the result equals `schema.adapt(whole_table)` for every statistic in
the first list (tested), whatever the chunking.

Memory is the token counters plus the sample. A categorical with tens of
millions of distinct ids would hold a counter of that size; when such a
feature sets `max_tokens`, its counter is pruned to the
`PRUNE_FACTOR * max_tokens` most frequent ids whenever it grows past
twice that (frequent ids survive; counts of ids pruned and seen again
restart from zero, so the tail of the vocabulary is approximate, never the
head). A feature without `max_tokens` is counted exactly; give such ids
`num_hash_bins` (no vocabulary at all) when they do not fit in memory.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import numpy as np
import pandas as pd

from mtrec.schema.conversion import FLOAT32_MAX, string_values
from mtrec.schema.features import _top_tokens
from mtrec.schema.tokenizer import text_tokens
from mtrec.schema.validation import (DataValidationError, check_labelled_counts,
                                     warn_degenerate_features)

__all__ = ["AdaptSummary", "PRUNE_FACTOR", "adapt_from_frames"]

#: A capped vocabulary's counter keeps this many times `max_tokens` ids.
PRUNE_FACTOR = 10
# Text lengths above this are counted as this (adapt caps max_length at 256).
_LONGEST_COUNTED = 4096


@dataclasses.dataclass(frozen=True)
class AdaptSummary:
    """What one streaming adapt pass read.

    Attributes:
        rows: int. Rows read.
        chunks: int. DataFrame chunks read.
        seconds: float. Wall time of the pass.
        sample_rows: int. Rows in the uniform sample.
        pruned: dict `{feature: times its counter was pruned}`.
    """

    rows: int
    chunks: int
    seconds: float
    sample_rows: int
    pruned: dict


def adapt_from_frames(schema, frames, sample_rows=100_000, seed=0):
    """Adapt `schema` on DataFrame chunks read once (see the module docstring).

    Args:
        schema: `mtrec.Schema`, adapted or not (its statistics are replaced).
        frames: iterable of DataFrames, the training rows in chunks, each
            with the feature, label and mask columns.
        sample_rows: int >= 1. Size of the uniform sample for the statistics
            that are not summed exactly.
        seed: int. Seed of the sample.

    Returns:
        `(schema, AdaptSummary)`; the schema is adapted in place.

    Raises:
        DataValidationError (a ValueError): a chunk does not fit the schema
            (named as `Schema.validate` names it, with the chunk's rows), the
            frames hold no row, or a task has no label in any row.
    """
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, (int, np.integer)) \
            or sample_rows < 1:
        raise ValueError(f"sample_rows must be an integer >= 1, got {sample_rows!r}.")
    started = time.perf_counter()
    counters = {spec.name: _Counts(spec) for spec in schema.features
                if _counted(spec)}
    moments = {spec.name: _Moments(spec) for spec in schema.features
               if spec.kind == "numeric"}
    labelled = {task.name: 0 for task in schema.tasks}
    largest_class = {task.name: -1 for task in schema.tasks if task.kind_spec.per_class}
    sample = _Reservoir(sample_rows, seed)
    rows = chunks = 0
    for frame in frames:
        if not len(frame):
            continue
        schema.validate(frame, labels=True)
        for name, counts in counters.items():
            counts.add(frame[name])
        for name, moment in moments.items():
            moment.add(frame[name])
        labels = schema.raw_labels(frame)
        for name, values in labels.items():
            labelled[name] += int(np.isfinite(values).sum())
            if name in largest_class:
                finite = values[np.isfinite(values)]
                if len(finite):
                    largest_class[name] = max(largest_class[name], int(finite.max()))
        sample.add(frame)
        rows += len(frame)
        chunks += 1
    if not rows:
        raise DataValidationError(
            "Streaming adapt read no rows: the training files are empty (or every "
            "chunk was); there is nothing to learn vocabularies and statistics from.")
    check_labelled_counts(schema, labelled, rows, "Streaming adapt")

    drawn = sample.frame()
    warn_degenerate_features(schema, drawn)
    stats = {}
    for spec in schema.features:
        stats[spec.name] = spec.adapt(drawn[spec.name])       # the sampled statistics
        if spec.name in counters:
            stats[spec.name].update(counters[spec.name].stats())
        if spec.name in moments:
            stats[spec.name].update(moments[spec.name].stats())
    for task in schema.tasks:
        if task.kind_spec.per_class:
            stats[f"task:{task.name}"] = {
                "num_classes": task.num_classes or largest_class[task.name] + 1}
    schema.stats = stats
    summary = AdaptSummary(rows=rows, chunks=chunks,
                           seconds=round(time.perf_counter() - started, 3),
                           sample_rows=len(drawn),
                           pruned={name: c.pruned for name, c in counters.items() if c.pruned})
    return schema, summary


# --------------------------------------------------------------------------
# accumulators
# --------------------------------------------------------------------------
def _counted(spec):
    """Features whose vocabulary comes from token counts."""
    if spec.kind == "categorical":
        return not spec.num_hash_bins
    return spec.kind in ("multihot", "text")


class _Counts:
    """Token counts of one feature, with what its `adapt` derives from them."""

    def __init__(self, spec):
        self.spec = spec
        self.counter = Counter()
        self.longest = 0                                   # multi-hot items per row
        self.lengths = np.zeros(_LONGEST_COUNTED + 1, np.int64)   # text lengths
        self.pruned = 0
        cap = getattr(spec, "max_tokens", None)
        self.keep = None if cap is None or spec.kind != "categorical" else PRUNE_FACTOR * cap

    def add(self, series):
        spec = self.spec
        if spec.kind == "categorical":
            values = spec.to_array(series, None)
            counts = pd.Series(values).value_counts(sort=False)
            if spec.dtype == "int64":
                self.counter.update({int(k): int(v) for k, v in counts.items()})
            else:
                self.counter.update({k: int(v) for k, v in counts.items()})
            if self.keep is not None and len(self.counter) > 2 * self.keep:
                self.counter = Counter(dict(self.counter.most_common(self.keep)))
                self.pruned += 1
        elif spec.kind == "multihot":
            items = spec.items(series)
            self.counter.update(item for row in items for item in row)
            self.longest = max(self.longest, max((len(r) for r in items), default=0))
        else:   # text
            tokens = [text_tokens(t) for t in string_values(series)]
            self.counter.update(tok for row in tokens for tok in row)
            lengths = np.minimum([len(t) for t in tokens], _LONGEST_COUNTED)
            self.lengths += np.bincount(lengths, minlength=_LONGEST_COUNTED + 1)

    def stats(self):
        spec = self.spec
        if spec.kind == "categorical":
            return {"vocabulary": _top_tokens(self.counter, spec.max_tokens,
                                              spec.min_frequency)}
        if spec.kind == "multihot":
            self.counter.pop("", None)      # "" is padding, never a token
            return {"vocabulary": _top_tokens(self.counter, spec.max_tokens),
                    "max_items": int(spec.max_items or min(max(self.longest, 1), 64))}
        out = {"vocabulary": _top_tokens(self.counter, spec.max_tokens - 2)}
        if not spec.max_length:
            out["max_length"] = _length_percentile(self.lengths, 95)
        return out


def _length_percentile(histogram, q):
    """`Text.adapt`'s max_length from a histogram of lengths: numpy's
    linear-interpolated percentile, rounded up, in [1, 256]."""
    total = int(histogram.sum())
    if not total:
        return 1
    # numpy's "linear" method: position q/100 * (n - 1) in the sorted lengths.
    position = q / 100 * (total - 1)
    below, fraction = int(np.floor(position)), position - np.floor(position)
    cumulative = np.cumsum(histogram)
    low = int(np.searchsorted(cumulative, below + 1))
    high = int(np.searchsorted(cumulative, min(below + 2, total)))
    value = low + fraction * (high - low)
    return int(min(max(np.ceil(value - 1e-9), 1), 256))


class _Moments:
    """Count, mean, sum of squared deviations, min and max of a numeric
    feature, merged chunk by chunk (Chan, Golub & LeVeque's update)."""

    def __init__(self, spec):
        self.spec = spec
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.low = self.high = None

    def add(self, series):
        values = pd.to_numeric(series, errors="coerce").astype("float64").to_numpy()
        # as Numeric.adapt: values beyond float32 arrive as inf, imputed as missing
        values = values[np.abs(values) <= FLOAT32_MAX]
        if not len(values):
            return
        low, high = float(np.float32(values.min())), float(np.float32(values.max()))
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        if self.spec.log1p:
            values = np.sign(values) * np.log1p(np.abs(values))
        n, mean = len(values), float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def stats(self):
        if not self.count:
            return {"mean": 0.0, "variance": 1.0, "min": None, "max": None}
        return {"mean": self.mean, "variance": self.m2 / self.count,
                "min": self.low, "max": self.high}


class _Reservoir:
    """A uniform random sample of at most `size` rows of a stream of
    DataFrames: each row gets a seeded uniform key and the `size` smallest
    keys are kept (a reservoir sample, vectorised per chunk)."""

    def __init__(self, size, seed):
        self.size = int(size)
        self.rng = np.random.default_rng(seed)
        self.kept = None
        self.keys = np.empty(0)

    def add(self, frame):
        keys = self.rng.random(len(frame))
        frame = frame.reset_index(drop=True)
        if self.kept is None:
            merged, merged_keys = frame, keys
        else:
            merged = pd.concat([self.kept, frame], ignore_index=True)
            merged_keys = np.concatenate([self.keys, keys])
        if len(merged) > self.size:
            chosen = np.sort(np.argpartition(merged_keys, self.size - 1)[:self.size])
            merged, merged_keys = merged.iloc[chosen].reset_index(drop=True), \
                merged_keys[chosen]
        self.kept, self.keys = merged, merged_keys

    def frame(self):
        return self.kept
