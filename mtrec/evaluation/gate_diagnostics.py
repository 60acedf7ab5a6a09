"""Gate diagnostics: how the gates of OMoE, MMoE, CGC and PLE use their experts.

`gates(model, data)` runs `model.gate_weights` over a dataset and reports,
for every gate of every gated level, the mean weight given to each expert,
the mean entropy of the gate's per-example distribution, and the gates
that have collapsed onto a single expert (which then trains alone while
its peers starve, the failure mode noted by Ma et al., KDD 2018, §4.2 and
Tang et al., RecSys 2020, §5.3).
"""

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.data.pandas_dataset import DATAFRAME_BATCH_SIZE, from_pandas
from mtrec.utils.arguments import check_optional_count

__all__ = ["GateCollapseWarning", "GateReport", "gates"]


class GateCollapseWarning(UserWarning):
    """A gate gives almost all of its weight to one expert."""


@dataclasses.dataclass
class GateReport:
    """What `mtrec.evaluation.gates` measured.

    Attributes:
        usage: DataFrame, index `(level, gate)`, one column per expert:
            the mean weight the gate gives each expert (rows sum to 1).
            Experts a gate cannot see (CGC/PLE task gates only see their
            own task's and the shared experts) have weight 0.
        entropy: DataFrame, index `(level, gate)`, columns `entropy` (mean
            per-example entropy of the gate weights, in nats),
            `normalized_entropy` (that divided by `log(num_experts)`: 1 is
            a uniform mixture, 0 a single expert; NaN for a gate that sees
            one expert) and `num_experts` (experts the gate can see).
        visible: DataFrame of bool shaped like `usage`: which experts each
            gate can see.
        collapsed: list of `(level, gate, expert)` whose mean weight is
            above `collapse_threshold`.
        collapse_threshold: float. The threshold used.
        num_examples: int. Examples the statistics average over.
    """

    usage: pd.DataFrame
    entropy: pd.DataFrame
    visible: pd.DataFrame
    collapsed: list
    collapse_threshold: float
    num_examples: int

    def plot(self, path):
        """Write a heatmap of `usage` (one panel per level, gates x experts,
        values annotated, experts a gate cannot see left blank) to `path`,
        a PNG file.

        Returns:
            `pathlib.Path` of the written file.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as error:  # pragma: no cover - depends on the env
            raise ImportError(
                "GateReport.plot needs matplotlib; install it with "
                "`pip install matplotlib`.") from error
        path = Path(path)
        levels = list(dict.fromkeys(self.usage.index.get_level_values("level")))
        blocks = [self.usage.loc[level].dropna(axis=1, how="all") for level in levels]
        width = 2.5 + 0.9 * max(block.shape[1] for block in blocks)
        height = sum(1.2 + 0.45 * block.shape[0] for block in blocks)
        # A bare Figure on the Agg canvas: no pyplot, no global backend change.
        figure = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(len(levels), 1, squeeze=False)[:, 0]
        image = None
        for ax, level, block in zip(axes, levels, blocks):
            visible = self.visible.loc[level][block.columns].to_numpy(dtype=bool)
            values = block.to_numpy(dtype="float64")
            image = ax.imshow(np.ma.masked_where(~visible, values), vmin=0.0,
                              vmax=1.0, cmap="viridis", aspect="auto")
            ax.set_facecolor("#eeeeee")
            for (row, col), value in np.ndenumerate(values):
                if visible[row, col]:
                    ax.text(col, row, f"{value:.2f}", ha="center", va="center",
                            fontsize=8, color="white" if value < 0.6 else "black")
            ax.set_xticks(range(block.shape[1]), labels=list(block.columns),
                          rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(block.shape[0]), labels=list(block.index), fontsize=8)
            ax.set_xlabel("expert")
            ax.set_ylabel("gate")
            ax.set_title(f"{level}: mean gate weight", fontsize=10)
        figure.colorbar(image, ax=list(axes), label="mean gate weight")
        figure.savefig(path, dpi=100)
        return path


def _features(batch):
    """The features of a `(features, labels[, weights])` batch or a bare
    feature dict."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("Got an empty batch; expected (features, labels).")
        return batch[0]
    return batch


def _structural_masks(model, structure):
    """Which experts each gate can see, as the model's backbone reports
    them (`model.gate_masks()`, one bool array per level)."""
    masks = [np.asarray(mask, dtype=bool) for mask in model.gate_masks()]
    if len(masks) != len(structure) or any(
            mask.shape != (len(gates), len(experts))
            for mask, (_, gates, experts) in zip(masks, structure)):
        raise ValueError(
            f"{type(model).__name__}.gate_masks() gives shapes "
            f"{[mask.shape for mask in masks]}, but gate_structure() names "
            f"{[(len(g), len(e)) for _, g, e in structure]} (gates, experts) per level.")
    return masks


def _check_arguments(max_batches, collapse_threshold):
    check_optional_count("max_batches", max_batches)
    if not 0.0 < float(collapse_threshold) <= 1.0:
        raise ValueError(f"collapse_threshold must be in (0, 1], got "
                         f"{collapse_threshold!r}.")


def gates(model, data, max_batches=None, collapse_threshold=0.9, plot_path=None):
    """Expert usage, gate entropy and collapsed gates of a gated model.

    Runs `model.gate_weights(features)` over the batches of `data` and
    averages over every example seen. The entropy of gate `g` on one
    example is `H = -sum_e w_e log w_e` (nats); the report gives its mean
    over examples, and that mean divided by `log(K)` where `K` is the
    number of experts the gate can see (taken from the model's gate masks:
    all experts for OMoE/MMoE and for the shared gates of PLE, the task's
    own plus the shared experts for CGC/PLE task gates). A gate whose mean
    weight on one expert exceeds `collapse_threshold` is reported in
    `collapsed` and warned about with a `GateCollapseWarning`; gates that
    see a single expert cannot collapse.

    Args:
        model: an OMoE, MMoE, CGC or PLE model (any model with
            `gate_structure()`, `gate_masks()` and `gate_weights(inputs)`).
        data: iterable of `(features, labels)` batches or of feature dicts,
            e.g. `mtrec.data.from_pandas(df, schema)`; or a pandas
            DataFrame (batched with `from_pandas(df, model.schema,
            batch_size=4096, labels=False)`).
        max_batches: int. Stop after this many batches; `None` reads all.
        collapse_threshold: float in `(0, 1]`. Defaults to `0.9`.
        plot_path: str or path. When given, also write the heatmap there
            (see `GateReport.plot`).

    Returns:
        `GateReport`.

    Raises:
        ValueError: the model has no gates (SingleTask, SharedBottom), the
            data is empty, or an argument is out of range.
    """
    _check_arguments(max_batches, collapse_threshold)
    if not all(hasattr(model, name) for name in ("gate_weights", "gate_structure",
                                                 "gate_masks")):
        raise ValueError(
            f"Gate diagnostics need an mtrec model with gate_weights(); got "
            f"{type(model).__name__}.")
    structure = model.gate_structure()
    if not structure:
        # Raises the model's own "has no gates" error before any data work.
        model.gate_weights({})
        raise ValueError(f"{type(model).__name__} has no gates.")
    if isinstance(data, pd.DataFrame):
        data = from_pandas(data, model.schema, batch_size=DATAFRAME_BATCH_SIZE,
                           labels=False)

    levels = [level for level, _, _ in structure]
    weight_sums = {level: 0.0 for level in levels}
    entropy_sums = {level: 0.0 for level in levels}
    num_examples = 0
    for index, batch in enumerate(data):
        if max_batches is not None and index >= max_batches:
            break
        weights = model.gate_weights(_features(batch))
        for level, gate_names, expert_names in structure:
            # (batch, gates, experts)
            w = np.asarray(weights[level], dtype="float64")
            if w.shape[1:] != (len(gate_names), len(expert_names)):
                raise ValueError(
                    f"Gate weights of level '{level}' have shape {w.shape}, but "
                    f"gate_structure() names {len(gate_names)} gates and "
                    f"{len(expert_names)} experts.")
            weight_sums[level] = weight_sums[level] + w.sum(axis=0)
            # 0 log 0 = 0: masked experts have weight exactly 0
            plogp = np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0)
            entropy_sums[level] = entropy_sums[level] - plogp.sum(axis=(0, 2))
        num_examples += len(next(iter(weights.values())))
    if num_examples == 0:
        raise ValueError("The dataset is empty; there are no gate weights to report.")

    masks = _structural_masks(model, structure)
    usage, entropy, visible, collapsed = [], [], [], []
    for i, (level, gate_names, expert_names) in enumerate(structure):
        mean = weight_sums[level] / num_examples
        sees = masks[i]
        index = pd.MultiIndex.from_product([[level], gate_names],
                                           names=["level", "gate"])
        usage.append(pd.DataFrame(mean, index=index, columns=expert_names))
        visible.append(pd.DataFrame(sees, index=index, columns=expert_names))
        num_visible = sees.sum(axis=1)
        mean_entropy = entropy_sums[level] / num_examples
        normalized = np.array([h / math.log(k) if k > 1 else np.nan
                               for h, k in zip(mean_entropy, num_visible)])
        entropy.append(pd.DataFrame(
            {"entropy": mean_entropy, "normalized_entropy": normalized,
             "num_experts": num_visible.astype("int64")}, index=index))
        for g, gate in enumerate(gate_names):
            if num_visible[g] < 2:
                continue
            for e, expert in enumerate(expert_names):
                if mean[g, e] > collapse_threshold:
                    collapsed.append((level, gate, expert))
                    warnings.warn(
                        f"Gate '{gate}' of level '{level}' has collapsed: it "
                        f"gives expert '{expert}' {mean[g, e]:.1%} of its weight "
                        f"on average (collapse_threshold={collapse_threshold}), "
                        f"so its other {num_visible[g] - 1} expert(s) barely "
                        f"train. Consider more dropout in the experts, fewer "
                        f"experts, or a lower learning rate.",
                        GateCollapseWarning, stacklevel=2)

    usage, visible = pd.concat(usage), pd.concat(visible)
    usage.columns.name = visible.columns.name = "expert"
    # experts named in another level only: not visible to this level's gates
    visible = visible.fillna(False).astype(bool)
    report = GateReport(usage=usage, entropy=pd.concat(entropy), visible=visible,
                        collapsed=collapsed,
                        collapse_threshold=float(collapse_threshold),
                        num_examples=int(num_examples))
    if plot_path is not None:
        report.plot(plot_path)
    return report
