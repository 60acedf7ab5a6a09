"""Values as error messages should show them."""

import numpy as np

__all__ = ["plain"]


def plain(value):
    """numpy scalars as Python ones, so messages read `2`, not `np.int64(2)`."""
    return value.item() if isinstance(value, np.generic) else value
