"""Names safe for Keras layers, TF ops and signatures."""

__all__ = ["safe_name"]


def safe_name(name):
    """`name` with every character outside `[A-Za-z0-9_.-]` replaced by `_`."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(name))
