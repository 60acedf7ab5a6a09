"""Layer, scope and serving names from column names (`mtrec.utils.names`)."""

import re

import pytest

from mtrec.utils.names import ascii_name, safe_name, serving_name, serving_names

ODD = ["é", "中文", "1st", "a.b", "x-y", "p q", "prix (€)", "ﬁle", "educational-num"]


def test_ascii_name_folds_accents_and_spells_other_characters():
    assert ascii_name("café") == "cafe"
    assert ascii_name("ﬁle") == "file"
    assert ascii_name("年龄") == "u5e74u9f84"
    assert ascii_name("prix (€)") == "prix (u20ac)"
    assert ascii_name("plain-ascii name") == "plain-ascii name"


def test_safe_and_serving_names_fit_tensorflow():
    for name in ODD:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", safe_name(name)), name
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", serving_name(name)), name
    assert safe_name("a.b-c d") == "a.b-c_d"          # ASCII names as before
    assert [serving_name(n) for n in ["educational-num", "Class Name", "1st", "é"]] == [
        "educational_num", "Class_Name", "f1st", "e"]


def test_serving_names_refuse_clashes_and_suggest_a_free_name():
    assert serving_names(["a", "b"]) == {"a": "a", "b": "b"}
    with pytest.raises(ValueError, match=r"Features \['a b', 'a-b'\] all become the "
                                         r"serving input 'a_b'.*e\.g\. 'a-b' to 'a_b_2'"):
        serving_names(["a b", "a-b", "x"])
    with pytest.raises(ValueError, match=r"'a_b_3'"):
        serving_names(["a b", "a-b", "a_b_2"])
