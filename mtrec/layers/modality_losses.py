"""Auxiliary modality losses: reconstruct a modality from the others, align
two modalities with InfoNCE; the heads they train, and their specs."""

import dataclasses
import math
from typing import ClassVar

import keras
from keras import ops

from mtrec.utils.names import safe_name

#: What a reconstruction head's prediction is compared with the target by.
RECONSTRUCTION_LOSSES = ("cosine", "mse")
#: What a reconstruction head reads (see `Reconstruction`).
RECONSTRUCTION_SOURCES = ("fused", "others")
#: The range a learned InfoNCE temperature is clipped to.
TEMPERATURE_RANGE = (0.01, 1.0)
# Added to the logits of excluded rows / columns (finite: no NaN anywhere).
_LARGE_NEGATIVE = -1e9


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    """Predict modality `modality`'s group representation (the output of
    `FeatureEmbedding(grouped=True)` for it) from the other modalities,
    with a learned linear head (one Dense).

    The target is taken with `stop_gradient`: the loss trains the head and
    the representations it reads, never the target's encoder (otherwise
    both sides could shrink together towards a trivial, constant target).

    Args:
        modality: str. The modality to reconstruct.
        weight: float >= 0. Its weight `mu_m` in the total loss. Defaults
            to `1.0`.
        loss: `"cosine"` (`1 - cos(prediction, target)`, the default) or
            `"mse"` (mean squared error over the group's columns).
        source: `"fused"` (the default) or `"others"`. `"others"`: the
            concatenated groups of the other modalities. `"fused"`: the
            model's fusion of all groups with this one's masked to zeros,
            less this group's (zero) columns; under `fusion="gated"` that
            is `ModalityFusion`'s output, whose gate sees the modality
            masked, and under `"concat"` / `"modality_experts"` it is the
            same as `"others"`.
    """

    kind: ClassVar[str] = "reconstruction"
    modality: str
    weight: float = 1.0
    loss: str = "cosine"
    source: str = "fused"

    @property
    def log_name(self):
        """Its key in the training logs."""
        return f"{safe_name(self.modality)}_reconstruction_loss"

    @property
    def modalities(self):
        return (self.modality,)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """Symmetric InfoNCE between two modalities' group representations,
    each projected by a learned Dense to `dim` and L2-normalised; the
    other examples of the batch are the negatives (CLIP's loss).

    Args:
        modalities: two distinct modality names.
        weight: float >= 0. Its weight `mu_m`. Defaults to `1.0`.
        temperature: float > 0. The softmax temperature. Defaults to `0.1`.
        learn_temperature: bool. Learn the (log-)temperature, starting at
            `temperature` and clipped to `TEMPERATURE_RANGE`. Defaults to
            `False`.
        dim: int. Width of the common space. Defaults to `16`.
    """

    kind: ClassVar[str] = "alignment"
    modalities: tuple
    weight: float = 1.0
    temperature: float = 0.1
    learn_temperature: bool = False
    dim: int = 16

    @property
    def log_name(self):
        return "_".join(safe_name(m) for m in self.modalities) + "_alignment_loss"


#: The spec class of each `kind`.
MODALITY_LOSS_KINDS = {cls.kind: cls for cls in (Reconstruction, Alignment)}


def spec_to_dict(spec):
    """A spec's JSON form: `{"kind": ..., **fields}`."""
    fields = dataclasses.asdict(spec)
    if "modalities" in fields:
        fields["modalities"] = list(fields["modalities"])
    return {"kind": spec.kind, **fields}


def parse_modality_losses(values, modalities=None):
    """Validated spec objects from a list of dicts (`{kind: ..., ...}`, as
    in a run config's `model.args.modality_losses`) or spec objects.

    Args:
        values: list of dicts or `Reconstruction` / `Alignment`, or None.
        modalities: the modality groups of the model's schema, to check the
            names against (None: not checked, as when a run config is
            validated before its data is read).

    Returns:
        list of spec objects.

    Raises:
        ValueError: naming the spec (by position) and what is wrong.
    """
    specs = []
    for i, value in enumerate(values or []):
        where = f"modality_losses[{i}]"
        if isinstance(value, tuple(MODALITY_LOSS_KINDS.values())):
            spec = value
        elif isinstance(value, dict):
            spec = _spec_from_dict(value, where)
        else:
            raise ValueError(f"{where} must be a dict such as {{kind: reconstruction, "
                             f"modality: text, weight: 0.1}}, got {value!r}.")
        specs.append(_checked(spec, where, modalities))
    names = [spec.log_name for spec in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"modality_losses declares {repeated} more than once; give each "
                         f"reconstruction / pair of modalities once.")
    return specs


def _spec_from_dict(value, where):
    value = dict(value)
    kind = value.pop("kind", None)
    if kind not in MODALITY_LOSS_KINDS:
        raise ValueError(f"{where} has kind {kind!r}; modality losses are of kind "
                         f"{list(MODALITY_LOSS_KINDS)}.")
    cls = MODALITY_LOSS_KINDS[kind]
    accepted = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in value if k not in accepted]
    if unknown:
        raise ValueError(f"{where} ({kind}) has unknown keys {unknown}; a {kind} loss "
                         f"takes {accepted}.")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.name not in value]
    if missing:
        raise ValueError(f"{where} ({kind}) needs {missing}.")
    if "modalities" in value:
        if not isinstance(value["modalities"], (list, tuple)):
            raise ValueError(f"{where} (alignment) needs modalities: a list of two "
                             f"modality names, got {value['modalities']!r}.")
        value["modalities"] = tuple(value["modalities"])
    return cls(**value)


def _checked(spec, where, modalities):
    number = (int, float)
    if isinstance(spec.weight, bool) or not isinstance(spec.weight, number) \
            or not spec.weight >= 0:
        raise ValueError(f"{where} has weight {spec.weight!r}; a loss weight is a "
                         f"number >= 0.")
    if isinstance(spec, Reconstruction):
        if spec.loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"{where} has loss {spec.loss!r}; a reconstruction loss is "
                             f"one of {list(RECONSTRUCTION_LOSSES)}.")
        if spec.source not in RECONSTRUCTION_SOURCES:
            raise ValueError(f"{where} has source {spec.source!r}; a reconstruction "
                             f"reads one of {list(RECONSTRUCTION_SOURCES)}.")
        spec = dataclasses.replace(spec, modality=str(spec.modality),
                                   weight=float(spec.weight))
    else:
        if len(spec.modalities) != 2 or spec.modalities[0] == spec.modalities[1]:
            raise ValueError(f"{where} (alignment) needs two different modalities, got "
                             f"{list(spec.modalities)}.")
        if isinstance(spec.temperature, bool) or not isinstance(spec.temperature, number) \
                or not spec.temperature > 0:
            raise ValueError(f"{where} has temperature {spec.temperature!r}; it must be "
                             f"a number > 0.")
        low, high = TEMPERATURE_RANGE
        if spec.learn_temperature and not low <= spec.temperature <= high:
            raise ValueError(f"{where} learns its temperature, which is clipped to "
                             f"[{low}, {high}]; start it inside, got {spec.temperature}.")
        if not isinstance(spec.learn_temperature, bool):
            raise ValueError(f"{where} has learn_temperature "
                             f"{spec.learn_temperature!r}; expected true or false.")
        if isinstance(spec.dim, bool) or not isinstance(spec.dim, int) or spec.dim < 1:
            raise ValueError(f"{where} has dim {spec.dim!r}; expected an integer >= 1.")
        spec = dataclasses.replace(spec, modalities=tuple(str(m) for m in spec.modalities),
                                   weight=float(spec.weight),
                                   temperature=float(spec.temperature))
    if modalities is not None:
        unknown = [m for m in spec.modalities if m not in modalities]
        if unknown:
            raise ValueError(f"{where} names the modality {unknown[0]!r}, but the "
                             f"schema's modality groups are {list(modalities)}.")
    return spec


def reconstruction_loss(prediction, target, present, loss="cosine"):
    """Mean reconstruction loss over the examples that have the modality.

    Args:
        prediction, target: tensors `(batch, dim)`.
        present: bool tensor `(batch,)`; other rows contribute nothing.
        loss: `"cosine"` (`1 - cos`) or `"mse"` (mean over the columns).

    Returns:
        float32 scalar; 0 when no row is present.
    """
    prediction, target = ops.cast(prediction, "float32"), ops.cast(target, "float32")
    if loss == "mse":
        per_example = ops.mean(ops.square(prediction - target), axis=-1)
    else:
        per_example = 1.0 - ops.sum(_unit(prediction) * _unit(target), axis=-1)
    weights = ops.cast(present, "float32")
    return ops.sum(weights * per_example) / ops.maximum(ops.sum(weights), 1.0)


def info_nce(a, b, valid, temperature):
    """Symmetric InfoNCE of paired rows, the batch's other rows the negatives.

    With `a`, `b` L2-normalised and `s = a b^T / temperature`, row `i`'s
    losses are `-log softmax(s[i, :])[i]` and `-log softmax(s[:, i])[i]`;
    the result is their mean over the valid rows, each softmax taken over
    the valid rows / columns only.

    Args:
        a, b: tensors `(batch, dim)`.
        valid: bool tensor `(batch,)`: the pairs taking part (both
            modalities present).
        temperature: float or scalar tensor > 0.

    Returns:
        float32 scalar; 0 when fewer than 2 rows are valid.
    """
    a, b = _unit(ops.cast(a, "float32")), _unit(ops.cast(b, "float32"))
    out = ops.cast(ops.logical_not(valid), "float32")
    # (batch, batch): similarities, excluded rows and columns pushed out
    logits = ops.matmul(a, ops.transpose(b)) / temperature
    logits = logits + _LARGE_NEGATIVE * (out[None, :] + out[:, None])
    positives = ops.diagonal(logits)
    rows = ops.logsumexp(logits, axis=1) - positives
    columns = ops.logsumexp(logits, axis=0) - positives
    weights = 1.0 - out
    count = ops.sum(weights)
    loss = ops.sum(weights * (rows + columns)) / (2.0 * ops.maximum(count, 1.0))
    return ops.where(count >= 2.0, loss, 0.0)


def _unit(x):
    """Rows scaled to length 1 (an all-zero row stays zero, finite gradient)."""
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-24))


@keras.saving.register_keras_serializable(package="mtrec.layers")
class ModalityLosses(keras.layers.Layer):
    """The heads and values of the auxiliary modality losses `R_m`.

    One linear head per `Reconstruction` (reading the other groups, width
    `sum(group_dims) - group_dims[m]`, predicting group `m`), two
    projections per `Alignment` (and its log-temperature when learned). A
    model computes each loss on every training batch, adds
    `sum_m weight_m * R_m` to its loss and logs each `R_m` (unweighted)
    under the spec's `log_name`, in the metric of the same name
    (`loss_trackers`). Examples whose modality is missing or dropped
    contribute nothing (see `reconstruction_loss`, `info_nce`).

    Args:
        modality_losses: list of specs or their dicts (see
            `parse_modality_losses`).
        modalities: list of str. The modality groups, in order
            (`FeatureEmbedding.modalities`).
        group_dims: list of int. Their widths (`FeatureEmbedding.group_dims`).

    Call arguments:
        groups: list of `len(modalities)` tensors `(batch, group_dims[i])`.
        present: dict `{modality: bool (batch,)}`.
        sources: dict `{modality: tensor}`: the input of each
            reconstruction head (see `Reconstruction.source`).
        return_reconstructions: bool. Also return each head's prediction,
            so a model imputing a modality reuses it instead of running
            the head a second time. Defaults to `False`.

    Returns:
        dict `{log_name: float32 scalar}`, the unweighted losses; with
        `return_reconstructions`, also `{modality: (batch, group_dims[m])}`.
    """

    def __init__(self, modality_losses, modalities, group_dims, **kwargs):
        super().__init__(**kwargs)
        self.modalities = [str(m) for m in modalities]
        self.group_dims = [int(d) for d in group_dims]
        if len(self.modalities) < 2:
            raise ValueError(
                f"Modality losses relate modalities to each other, but the schema has "
                f"only the modality group {self.modalities}; tag features with another "
                f"modality (e.g. Text(..., modality='text')) or drop modality_losses.")
        self.specs = parse_modality_losses(modality_losses, self.modalities)
        if not self.specs:
            raise ValueError("ModalityLosses needs at least one modality loss.")
        self.modality_losses = [spec_to_dict(s) for s in self.specs]
        self.reconstructions = [s for s in self.specs if isinstance(s, Reconstruction)]
        self.alignments = [s for s in self.specs if isinstance(s, Alignment)]
        self.heads = [keras.layers.Dense(self.group_dims[self._index(s.modality)],
                                         dtype=self.dtype_policy,
                                         name=f"reconstruct_{safe_name(s.modality)}")
                      for s in self.reconstructions]
        # projections[2k], projections[2k + 1]: alignment k's two modalities
        self.projections = [
            keras.layers.Dense(s.dim, dtype=self.dtype_policy,
                               name=f"align_{'_'.join(safe_name(x) for x in s.modalities)}"
                                    f"_{safe_name(m)}")
            for s in self.alignments for m in s.modalities]
        self.loss_trackers = [keras.metrics.Mean(name=s.log_name) for s in self.specs]

    def _index(self, modality):
        return self.modalities.index(modality)

    def build(self, input_shape=None):
        total = sum(self.group_dims)
        for head, spec in zip(self.heads, self.reconstructions):
            head.build((None, total - self.group_dims[self._index(spec.modality)]))
        pairs = [m for s in self.alignments for m in s.modalities]
        for projection, m in zip(self.projections, pairs):
            projection.build((None, self.group_dims[self._index(m)]))
        self.log_temperatures = [
            self.add_weight(name=f"log_temperature_{k}", shape=(),
                            initializer=keras.initializers.Constant(math.log(s.temperature)))
            for k, s in enumerate(self.alignments) if s.learn_temperature]
        self.built = True

    def temperature(self, k):
        """Alignment `k`'s temperature (a tensor when learned)."""
        spec = self.alignments[k]
        if not spec.learn_temperature:
            return spec.temperature
        learned = [j for j, s in enumerate(self.alignments) if s.learn_temperature]
        log_t = self.log_temperatures[learned.index(k)]
        low, high = TEMPERATURE_RANGE
        return ops.exp(ops.clip(ops.cast(log_t, "float32"), math.log(low), math.log(high)))

    def reconstruct(self, modality, source):
        """The reconstruction head of `modality` applied to its source."""
        spec = next(s for s in self.reconstructions if s.modality == modality)
        return self.heads[self.reconstructions.index(spec)](source)

    def call(self, groups, present, sources, return_reconstructions=False):
        values, reconstructions = {}, {}
        for head, spec in zip(self.heads, self.reconstructions):
            target = ops.stop_gradient(groups[self._index(spec.modality)])
            reconstructions[spec.modality] = head(sources[spec.modality])
            values[spec.log_name] = reconstruction_loss(
                reconstructions[spec.modality], target, present[spec.modality], spec.loss)
        for k, spec in enumerate(self.alignments):
            first, second = spec.modalities
            a = self.projections[2 * k](groups[self._index(first)])
            b = self.projections[2 * k + 1](groups[self._index(second)])
            valid = ops.logical_and(present[first], present[second])
            values[spec.log_name] = info_nce(a, b, valid, self.temperature(k))
        values = {s.log_name: values[s.log_name] for s in self.specs}
        return (values, reconstructions) if return_reconstructions else values

    def weighted_sum(self, values):
        """`sum_m weight_m * R_m` of `call`'s values."""
        return sum(s.weight * values[s.log_name] for s in self.specs)

    def track(self, values, batch_size):
        """Add this batch's values to the loss metrics, weighted by the
        batch's size (as Keras weighs the logged `loss`)."""
        for tracker, spec in zip(self.loss_trackers, self.specs):
            tracker.update_state(values[spec.log_name], sample_weight=batch_size)

    def get_config(self):
        return {**super().get_config(), "modality_losses": self.modality_losses,
                "modalities": self.modalities, "group_dims": self.group_dims}
