"""Tests for mtrec.schema.tokenizer: the Python twin of the in-graph tokeniser."""

import keras
import numpy as np

from mtrec.schema import TEXT_STANDARDIZE
from mtrec.schema.tokenizer import text_tokens

TEXTS = ["The dress FITS well!", "  runs\tsmall,so   order\none-size up ", "", "¡Ça va? naïve café",
         "e-mail: me@x.org (50%)", "A.B.C don't"]


def test_tokens_are_what_text_vectorization_produces():
    vocabulary = sorted({token for text in TEXTS for token in text_tokens(text)})
    layer = keras.layers.TextVectorization(
        standardize=TEXT_STANDARDIZE, split="whitespace", vocabulary=vocabulary,
        output_mode="int", output_sequence_length=12)
    ids = np.asarray(layer(np.array(TEXTS, dtype=object)))
    words = np.array(["", "[UNK]", *vocabulary], dtype=object)
    for text, row in zip(TEXTS, ids):
        assert [w for w in words[row] if w] == text_tokens(text), text


def test_tokens_by_hand():
    assert text_tokens("The dress FITS well!") == ["the", "dress", "fits", "well"]
    assert text_tokens("e-mail: me@x.org") == ["email", "mexorg"]
    assert text_tokens("ÇA") == ["Ça"]   # only ASCII is lower-cased, as in the graph
    assert text_tokens(" \t\n") == []
