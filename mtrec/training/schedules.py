"""Learning-rate schedules a run config names (`training.learning_rate_schedule`)."""

import keras

SCHEDULES = ("constant", "cosine")


def learning_rate(base, name="constant", total_steps=None, warmup_steps=0,
                  final_fraction=0.0):
    """What an optimizer's `learning_rate` argument takes for a schedule.

    `cosine` warms up linearly from 0 over `warmup_steps`, then decays
    along a half cosine to `final_fraction * base` at `total_steps` (the
    run's last possible step: early stopping may end it sooner, at a rate
    not yet fully decayed). A resumed run continues the curve, since the
    optimizer's step counter is checkpointed.

    Args:
        base: float. Peak learning rate.
        name: str. One of `SCHEDULES`.
        total_steps: int. Steps of the whole run (epochs x steps per
            epoch); needed by `cosine`.
        warmup_steps: int. Linear warm-up steps (`cosine` only).
        final_fraction: float in [0, 1]. Rate at the end, as a fraction of
            `base`.

    Returns:
        float (`constant`) or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    if name not in SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {name!r}; expected one of "
                         f"{list(SCHEDULES)}.")
    if name == "constant":
        return float(base)
    if total_steps is None or total_steps < 1:
        raise ValueError(f"The cosine schedule needs total_steps >= 1, got {total_steps}.")
    warmup_steps = int(warmup_steps)
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got "
                         f"{warmup_steps}; shorten the warm-up.")
    if not 0.0 <= final_fraction <= 1.0:
        raise ValueError(f"final_fraction must be in [0, 1], got {final_fraction}.")
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            float(base), decay_steps=int(total_steps), alpha=float(final_fraction))
    # Keras' warm-up starts from initial_learning_rate and climbs to
    # warmup_target: start at 0, peak at base.
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=int(total_steps) - warmup_steps, alpha=float(final_fraction),
        warmup_target=float(base), warmup_steps=warmup_steps)
