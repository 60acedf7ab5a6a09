"""Tests for mtrec.utils.arguments."""

import numpy as np
import pytest

from mtrec.utils.arguments import check_optional_count


@pytest.mark.parametrize("value", [None, 3, np.int64(3), 10])
def test_none_and_counts_at_or_above_the_minimum_pass(value):
    check_optional_count("max_rows", value, 3)


@pytest.mark.parametrize("value", [2, 0, -1, True, 3.0, "3"])
def test_anything_else_names_the_argument_bound_and_value(value):
    with pytest.raises(ValueError) as error:
        check_optional_count("max_rows", value, 3, "rows to keep")
    assert str(error.value) == (f"max_rows must be None or an integer >= 3 (rows to keep), "
                                f"got {value!r}.")


def test_without_a_meaning_the_message_has_no_parentheses():
    with pytest.raises(ValueError, match=r"^max_batches must be None or an integer >= 1, "
                                         r"got 0\.$"):
        check_optional_count("max_batches", 0)
