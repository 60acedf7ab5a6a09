"""Transfer a trained model to new tasks: same class, same preprocessing and
trained weights, one new tower per new task.

    model = mtrec.models.MMoE(schema, ...)           # trained on income, marital
    bigger = model.with_tasks(mtrec.TaskSpec("education"), freeze="backbone")
    bigger.compile(optimizer=keras.optimizers.Adam(0.002))
    bigger.fit(train_df)                             # income, marital stay as they were

What is kept: the schema's feature specs and everything `adapt` learned for
them (vocabularies, normalisation statistics, bin edges) are copied, never
re-learned, so the new model encodes every input exactly as the old one;
the old tasks' specs and learned task statistics are kept too. Only the new
tasks' own statistics (a multiclass task's `num_classes`) are learned, from
the labels in `data` (`Schema.adapt` keeps no other per-task statistic:
no label counts, no prior, so new heads start from the default
initialisation). Every variable of the old model is copied into the new
one; the new towers and heads (and, in MMoE, the new tasks' gates) start
from their initialisers.
"""

import numpy as np
import keras
from keras import ops

from mtrec.models.mixture_of_experts import MMoE, OMoE
from mtrec.models.shared_bottom import SharedBottom
from mtrec.schema import Schema
from mtrec.schema.tasks import TaskSpec, as_task_specs
from mtrec.utils.names import safe_name

__all__ = ["FREEZE", "TRANSFERABLE", "KeepLeadingRows", "apply_freeze", "fill_missing_labels",
           "schema_with_tasks", "with_tasks"]

#: What `freeze=` may name: "backbone" (embeddings, backbone and the old
#: towers are fixed; only the new tasks' parts train), "embeddings" (only the
#: embedding tables are fixed), "none" (everything fine-tunes).
FREEZE = ("backbone", "embeddings", "none")

#: The models that can grow by a task, each with the variables that hold one
#: slice per task (path inside the model -> the axis that grows). A
#: SharedBottom's bottom and an OMoE's single gate serve any number of tasks
#: as they are; an MMoE gets one new gate per new task.
TRANSFERABLE = {
    SharedBottom: {},
    OMoE: {},
    MMoE: {"mixture_of_experts/gates/kernel": 0, "mixture_of_experts/gates/bias": 0},
}

#: Why the other named models are refused (what the new task would need).
_REFUSED = {
    "SingleTask": "shares nothing between tasks, so there is nothing to transfer; "
                  "train a SingleTask on the new task alone",
    "CGC": "has task-specific experts per task, and the shared experts' gates are "
           "built for the old task count",
    "PLE": "has task-specific experts per task and level, and each level's gates "
           "are built for the old task count",
    "CrossStitch": "has one column per task mixed by (tasks, tasks) stitch matrices, "
                   "which cannot grow without changing the old tasks' outputs",
    "DSelectK": "has per-task DSelect-k selectors",
    "ESMM": "chains fixed funnel tasks (ctr, cvr, ctcvr)",
    "AITM": "chains fixed funnel tasks (ctr, cvr, ctcvr)",
}


def with_tasks(model, tasks, freeze="backbone", data=None, train_tasks=None):
    """A new model of `model`'s class for its tasks plus `tasks`.

    The new model has `model`'s arguments and a schema of the old one plus
    the new `TaskSpec`s (feature statistics copied, not re-learned; see
    `schema_with_tasks`). It receives every trained variable of `model`
    (preprocessing, embeddings, fusion, backbone, the old towers and
    heads); the new tasks' towers and heads, and in MMoE their gates, start
    from their initialisers. Before any training, its old-task outputs are
    `model`'s (bit for bit in SharedBottom and OMoE; MMoE's gate einsum
    over one more gate may round the last float bit differently). `model`
    itself is not changed.

    Supported: SharedBottom, OMoE (the new tasks read the one gate's
    mixture) and MMoE (one new gate per new task over the same experts).
    Refused, with the reason: SingleTask, CGC, PLE, CrossStitch, DSelectK,
    ESMM, AITM and models of other classes.

    The freezing (`trainable` flags) and `train_tasks` are training
    settings of the returned object: a `.keras` file keeps the weights and
    architecture, not them; `apply_freeze` sets the flags again on a
    reloaded model.

    Args:
        model: a built (normally trained) mtrec model of a supported class.
        tasks: a `TaskSpec`, a list of them, or a dict `{name: kind}`.
        freeze: str, one of `FREEZE`. `"backbone"` (the default): the
            preprocessing, embeddings, fusion, backbone and the old tasks'
            towers and heads are not trained (batch norm in them runs in
            inference mode), so the old tasks' outputs stay exactly as
            they were while the new towers (and MMoE's new gates) train.
            `"embeddings"`: only the embedding tables (and the
            preprocessing, which has no trainable weights) are fixed.
            `"none"`: everything fine-tunes.
        data: DataFrame with the new tasks' label (and mask) columns, to
            learn their statistics (a multiclass task's `num_classes`) and
            check their labels; needed only for a multiclass task without
            `num_classes`.
        train_tasks: list of task names to train (default: all). The other
            tasks become the model's `untrained_tasks`: no loss, so their
            labels may be missing (NaN; see `fill_missing_labels`), and
            their towers and heads are fixed.

    Returns:
        a new, uncompiled model of `type(model)`.

    Raises:
        ValueError: an unsupported model, a bad `freeze`, a task name
            already in the model, unknown `train_tasks`.
    """
    if freeze not in FREEZE:
        raise ValueError(f"freeze must be one of {list(FREEZE)}, got {freeze!r}: "
                         f"'backbone' trains only the new tasks' parts, 'embeddings' "
                         f"fixes the embedding tables, 'none' fine-tunes everything.")
    per_task = _transfer_plan(model)
    schema = schema_with_tasks(model.schema, tasks, data=data)
    untrained = ()
    if train_tasks is not None:
        names = [train_tasks] if isinstance(train_tasks, str) else list(train_tasks)
        unknown = [n for n in names if n not in schema.task_names]
        if unknown or not names:
            raise ValueError(
                f"train_tasks={names!r} must name at least one of the new model's tasks "
                f"{schema.task_names}; unknown: {unknown}.")
        untrained = tuple(n for n in schema.task_names if n not in names)
    config = {**model.get_config(), "schema": schema.to_dict()}
    new = type(model).from_config(config)
    old_tasks = list(model.task_names)
    _copy_weights(model, new, per_task, old_tasks)
    if train_tasks is not None:
        # Read by compile (no loss for them) and the runner, as a class's own.
        new.untrained_tasks = untrained
    apply_freeze(new, freeze, old_tasks)
    # No loss reaches an untrained task's tower: fix it (and its batch norm).
    _freeze_towers(new, new.untrained_tasks)
    return new


def schema_with_tasks(schema, tasks, data=None):
    """`schema` plus new tasks, keeping everything it learned.

    The feature specs and their statistics are the old schema's own (not
    re-learned), as are the old tasks and their statistics. The new tasks'
    statistics are learned from `data` with `Schema.adapt` on a schema of
    the new tasks only (which also checks their labels and refuses a task
    without any); without `data`, a multiclass task needs `num_classes`.

    Args:
        schema: adapted `mtrec.Schema`.
        tasks: a `TaskSpec`, a list of them, or a dict `{name: kind}`.
        data: optional DataFrame with the new tasks' label and mask columns.

    Returns:
        a new adapted `Schema` with `schema.tasks + tasks`.
    """
    if not schema.adapted:
        raise ValueError("schema_with_tasks needs an adapted schema (the trained "
                         "model's); call schema.adapt(train_df) first.")
    new = as_task_specs([tasks] if isinstance(tasks, TaskSpec) else tasks)
    if not new:
        raise ValueError("with_tasks needs at least one new TaskSpec, got none.")
    taken = [t.name for t in new if t.name in schema.task_names]
    if taken:
        raise ValueError(
            f"Task(s) {taken} are already in the model (tasks {schema.task_names}); "
            f"a new task needs a new name.")
    learned = {}
    if data is not None:
        learned = Schema([], new).adapt(data).stats
    else:
        unknown = [t.name for t in new if t.kind_spec.per_class and t.num_classes is None]
        if unknown:
            raise ValueError(
                f"New multiclass task(s) {unknown} have no num_classes; pass data= (a "
                f"DataFrame with their label columns) to learn it, or set "
                f"TaskSpec(name, 'multiclass', num_classes=...).")
    return Schema(schema.features, list(schema.tasks) + new,
                  stats={**schema.stats, **learned})


def apply_freeze(model, what, old_tasks):
    """Set the `trainable` flags of a transferred model (see `with_tasks`);
    also for a transferred model reloaded from a `.keras` file.

    Args:
        model: a model of a class in `TRANSFERABLE`.
        what: one of `FREEZE`.
        old_tasks: names of the tasks whose towers and heads `"backbone"`
            fixes (the tasks of the model transferred from), in model order
            (first).
    """
    if what not in FREEZE:
        raise ValueError(f"freeze must be one of {list(FREEZE)}, got {what!r}.")
    per_task = _transfer_plan(model)
    old_tasks = list(old_tasks)
    if model.task_names[:len(old_tasks)] != old_tasks:
        raise ValueError(f"old_tasks {old_tasks} must be the first tasks of the model "
                         f"({model.task_names}).")
    # Layer flags, not only variable flags: a frozen BatchNormalization also
    # stops updating its moving statistics.
    model.trainable = True
    grown = [v for path, v in _relative_variables(model).items() if path in per_task]
    for variable in grown:
        variable.constraint = None
    if what == "none":
        return
    model.preprocessing.trainable = False
    model.embedding.trainable = False
    if what == "embeddings":
        return
    if model.modality_fusion is not None:
        model.modality_fusion.trainable = False
    model.backbone.trainable = False
    _freeze_towers(model, old_tasks)
    # The per-task slices of a frozen backbone (MMoE's gates): the new tasks'
    # rows train, the old ones are put back after every update.
    for variable in grown:
        variable.trainable = True
        variable.constraint = KeepLeadingRows(ops.convert_to_numpy(variable)[:len(old_tasks)])


class KeepLeadingRows(keras.constraints.Constraint):
    """A constraint that puts back the first rows of a variable after each
    update: the old tasks' slices of a per-task variable (MMoE's gate
    kernel `(tasks, input_dim, experts)`) stay exactly as they were while
    the new tasks' rows train. Set on the variable by `apply_freeze`; not
    saved with the model.

    Args:
        values: array `(rows, ...)`: the rows to keep, axis 0 first.
    """

    def __init__(self, values):
        self.values = np.asarray(values)

    def __call__(self, w):
        rows = self.values.shape[0]
        # (rows, ...) kept + (tasks - rows, ...) updated -> (tasks, ...)
        return ops.concatenate([ops.cast(self.values, w.dtype), w[rows:]], axis=0)


def fill_missing_labels(model, df):
    """`df` with a NaN column for each label (and mask) column of the
    model's `untrained_tasks` that it lacks, so a frame that has only the
    new tasks' labels fits the schema (`mtrec.data.from_pandas`).

    Returns:
        a copy of `df` (or `df` itself when nothing is missing).
    """
    missing = [c for t in model.schema.tasks if t.name in model.untrained_tasks
               for c in (t.label, t.mask) if c is not None and c not in df.columns]
    if not missing:
        return df
    return df.assign(**{c: np.float32("nan") for c in dict.fromkeys(missing)})


def _freeze_towers(model, task_names):
    """Fix the towers and heads of `task_names` (batch norm included)."""
    for task, tower, head in zip(model.towers.tasks, model.towers.towers, model.towers.heads):
        if task["name"] in task_names:
            tower.trainable = False
            head.trainable = False


def _transfer_plan(model):
    """The per-task variables of `model`'s class (`TRANSFERABLE`), or a
    ValueError naming the model and what works."""
    supported = ", ".join(cls.__name__ for cls in TRANSFERABLE)
    name = type(model).__name__
    plan = TRANSFERABLE.get(type(model))
    if plan is not None:
        return plan
    why = _REFUSED.get(name, "is not one of the models whose backbone can grow by a task")
    raise ValueError(
        f"with_tasks cannot add tasks to a {name}: it {why}. Supported: {supported}; "
        f"or train a new model on the old and new tasks.")


def _relative_variables(model):
    """`{path inside the model: variable}` for the model's own variables
    (not the seed generators', whose paths follow a global counter)."""
    prefix = f"{model.name}/"
    return {v.path[len(prefix):]: v for v in model.variables if v.path.startswith(prefix)}


def _copy_weights(old, new, per_task, old_tasks):
    """Assign `old`'s variables to `new`'s of the same path; a per-task
    variable gets the old tasks' slices and keeps its new rows."""
    source, target = _relative_variables(old), _relative_variables(new)
    new_tower_prefixes = tuple(
        f"towers/{part}_{safe_name(name)}/" for name in new.task_names[len(old_tasks):]
        for part in ("tower", "head"))
    for path, variable in target.items():
        if path not in source:
            if not path.startswith(new_tower_prefixes):
                raise ValueError(
                    f"with_tasks found the variable '{path}' in the new "
                    f"{type(new).__name__} but not in the trained one; the models' "
                    f"layouts differ (format_version {old.format_version}?), so the "
                    f"weights cannot be carried over.")
            continue
        value = ops.convert_to_numpy(source[path])
        if path in per_task and tuple(variable.shape) != value.shape:
            axis = per_task[path]
            kept = np.take(ops.convert_to_numpy(variable), np.arange(value.shape[axis],
                                                                     variable.shape[axis]),
                           axis=axis)
            value = np.concatenate([value, kept], axis=axis)
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"with_tasks cannot copy '{path}': shape {value.shape} in the trained "
                f"model, {tuple(variable.shape)} in the new one.")
        variable.assign(value)
    unused = [p for p in source if p not in target and not p.startswith("loss_weighting/")]
    if unused:
        raise ValueError(f"with_tasks found no place in the new {type(new).__name__} for "
                         f"the trained variables {unused[:5]}; nothing was transferred.")
