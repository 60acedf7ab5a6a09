"""Checks of plain arguments shared by loaders and tools."""

import numpy as np

__all__ = ["check_optional_count"]


def check_optional_count(name, value, minimum=1, meaning=""):
    """ValueError unless `value` is None or an integer >= `minimum`.

    Booleans are refused (True is an int to Python, not a count). The
    message names the argument, the bound, what the count means (when
    `meaning` is given) and the value found.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        detail = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must be None or an integer >= {minimum}{detail}, "
                         f"got {value!r}.")
