"""'Did you mean ...?' for every error message that names an unknown word.

One implementation for the config keys, dataset names, task kinds, text
encoders, loss weightings and column names, so they all suggest alike.
"""

import difflib

__all__ = ["closest", "did_you_mean", "edit_distance"]


def closest(word, options):
    """The option nearest `word` (case-insensitive), or None when none is close.

    An exact match up to case wins; otherwise among difflib's candidates
    the one with the fewest edits (difflib alone ranks 'adma' nearer
    'adamax' than 'adam').
    """
    word = str(word)
    lower = {str(o).lower(): o for o in options}
    if word.lower() in lower:
        return lower[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lower), n=3, cutoff=0.6)
    if not close:
        return None
    best = min(close, key=lambda option: edit_distance(word.lower(), option))
    return lower[best]


def did_you_mean(word, options):
    """`" (did you mean 'x'?)"` for the closest option, or `""` when none is close."""
    match = closest(word, options)
    return f" (did you mean '{match}'?)" if match is not None else ""


def edit_distance(a, b):
    """Optimal string alignment distance (Levenshtein plus transpositions)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)]
         for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]
