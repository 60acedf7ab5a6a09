"""Names safe for Keras layers, TF ops and signatures.

A feature name is a column name: any string (`"educational-num"`, `"Class
Name"`, `"1st"`, `"prix (€)"`, `"年龄"`). TensorFlow is narrower: layer and
op names become graph scopes (`[A-Za-z0-9_.\\-/>]`, ASCII only: a layer
named `lookup_é` trains and saves, then fails at export with "not a valid
scope name"), and a signature input must also be a Python keyword argument
(`[A-Za-z][A-Za-z0-9_]*`, or TF renames the keyword and the input has two
names). Both are derived here from one ASCII spelling of the name
(`ascii_name`): non-ASCII letters lose their accents (`é` -> `e`), other
non-ASCII characters become their code point (`年` -> `u5e74`).
"""

import re
import unicodedata
from collections import Counter

__all__ = ["ascii_name", "safe_name", "serving_name", "serving_names"]


def ascii_name(name):
    """`name` in ASCII: each non-ASCII character becomes the ASCII letters of
    its compatibility decomposition (`é` -> `e`, `ﬁ` -> `fi`) or, when it
    has none, `u` + its code point in hex (`年` -> `u5e74`)."""
    out = []
    for c in str(name):
        if c.isascii():
            out.append(c)
            continue
        folded = "".join(d for d in unicodedata.normalize("NFKD", c) if d.isascii())
        out.append(folded if folded.isalnum() else f"u{ord(c):x}")
    return "".join(out)


def safe_name(name):
    """`name` as a layer/scope name: ASCII (`ascii_name`), every character
    outside `[A-Za-z0-9_.-]` replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", ascii_name(name))


def serving_name(name):
    """`name` as a signature input and keyword argument `[A-Za-z][A-Za-z0-9_]*`:
    ASCII (`ascii_name`), every other character (`-`, space, `/`, `.`, ...)
    `_`, and an `f` in front of a name that does not start with a letter.
    So "educational-num" -> `educational_num`, "Class Name" -> `Class_Name`,
    "1st" -> `f1st`, "é" -> `e`, "年龄" -> `u5e74u9f84`."""
    served = re.sub(r"[^A-Za-z0-9_]", "_", ascii_name(name))
    return served if re.match(r"[A-Za-z]", served) else "f" + served


def serving_names(names, what="Features"):
    """`{name: serving_name(name)}`, refusing names that would share one.

    Raises:
        ValueError: naming the clashing names, the serving name they share,
            and a free name to rename one of them to.
    """
    served = {name: serving_name(name) for name in names}
    counts = Counter(served.values())
    clashes = [n for n, count in counts.items() if count > 1]
    if clashes:
        shared = clashes[0]
        group = [name for name, n in served.items() if n == shared]
        taken = set(served.values())
        free = next(f"{shared}_{i}" for i in range(2, len(taken) + 3)
                    if f"{shared}_{i}" not in taken)
        raise ValueError(
            f"{what} {group} all become the serving input {shared!r} (TensorFlow "
            f"signatures take [A-Za-z][A-Za-z0-9_]* names); rename one of the columns, "
            f"e.g. {group[-1]!r} to {free!r}, before building the model.")
    return served
