"""The tokeniser `adapt` uses to learn a Text feature's vocabulary.

It reproduces, in Python, what the in-graph `keras.layers.TextVectorization`
does with `standardize=TEXT_STANDARDIZE, split="whitespace"`, so the
vocabulary learned from a DataFrame is exactly the tokens the model sees.
"""

import re

__all__ = ["TEXT_STANDARDIZE", "text_tokens"]

# The standardisation of the in-graph TextVectorization layer.
TEXT_STANDARDIZE = "lower_and_strip_punctuation"

_TEXT_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
# tf.strings.lower and tf.strings.split touch ASCII only.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_WHITESPACE = re.compile(r"[ \t\n\r\v\f]+")


def text_tokens(text):
    """`text` lower-cased (ASCII), punctuation stripped, split on whitespace.

    Args:
        text: str.

    Returns:
        list of str, the non-empty tokens in order.
    """
    text = _TEXT_PUNCTUATION.sub("", text.translate(_ASCII_LOWER))
    return [t for t in _ASCII_WHITESPACE.split(text) if t]
