"""simtools._validation: one test per branch of every check."""

from __future__ import annotations

from enum import Enum

import numpy as np
import pytest
import scipy.sparse as sp

from simtools._validation import check_choice, check_k, check_texts, check_vectors, is_sparse


class Colour(str, Enum):
    RED = "red"
    DARK_BLUE = "dark_blue"


# -- check_choice -----------------------------------------------------------------------------
def test_check_choice_accepts_members_and_spellings():
    assert check_choice(Colour.RED, Colour, name="colour") is Colour.RED
    assert check_choice("RED", Colour, name="colour") is Colour.RED
    assert check_choice("dark-blue", Colour, name="colour") is Colour.DARK_BLUE


def test_check_choice_lists_valid_values():
    with pytest.raises(ValueError, match="unknown colour 'green'; valid values are 'red', 'dark_blue'"):
        check_choice("green", Colour, name="colour")


# -- check_texts ------------------------------------------------------------------------------
def test_check_texts_returns_a_list():
    assert check_texts(("a", "b")) == ["a", "b"]
    assert check_texts(t for t in ["x"]) == ["x"]
    assert check_texts(["", "a"], allow_empty=True) == ["", "a"]


def test_check_texts_rejects_a_bare_string():
    with pytest.raises(TypeError, match=r"texts must be a list of strings, not a single str; wrap it"):
        check_texts("hello")


def test_check_texts_rejects_bytes():
    with pytest.raises(TypeError, match="not a single bytes"):
        check_texts(b"hello")


def test_check_texts_rejects_non_iterables():
    with pytest.raises(TypeError, match="queries must be an iterable of strings, got int"):
        check_texts(3, name="queries")


def test_check_texts_rejects_an_empty_list():
    with pytest.raises(ValueError, match="texts is empty; give at least one text"):
        check_texts([])


def test_check_texts_rejects_non_str_items():
    with pytest.raises(TypeError, match=r"texts\[1\] is a int, expected str"):
        check_texts(["a", 1])


def test_check_texts_rejects_blank_texts():
    with pytest.raises(ValueError, match=r"texts\[1\] is empty or whitespace only"):
        check_texts(["a", "  \n"])


# -- check_vectors ----------------------------------------------------------------------------
def test_check_vectors_converts_dense_to_contiguous_float32():
    X = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
    out = check_vectors(X)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (3, 2)
    assert check_vectors([1, 2, 3]).shape == (1, 3)


def test_check_vectors_converts_sparse_to_csr_float32():
    out = check_vectors(sp.coo_matrix(np.eye(3)))
    assert sp.issparse(out) and out.format == "csr" and out.dtype == np.float32
    assert is_sparse(out) and not is_sparse(np.eye(3))


def test_check_vectors_rejects_non_numeric():
    with pytest.raises(TypeError, match="vectors must be numeric arrays, got list"):
        check_vectors([["a", "b"]])


def test_check_vectors_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"must have shape \(n, dim\); got an array of shape \(2, 2, 2\)"):
        check_vectors(np.zeros((2, 2, 2)))


def test_check_vectors_rejects_nan_dense():
    X = np.ones((3, 2))
    X[1, 0] = np.nan
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"contain NaN or infinity in 2 row\(s\)"):
        check_vectors(X)


def test_check_vectors_rejects_nan_sparse():
    with pytest.raises(ValueError, match="contain NaN or infinity; clean or drop"):
        check_vectors(sp.csr_matrix(np.array([[0.0, np.inf]])))


def test_check_vectors_rejects_zero_rows():
    with pytest.raises(ValueError, match="vectors are empty: got 0 rows"):
        check_vectors(np.zeros((0, 3)))


def test_check_vectors_rejects_dimension_mismatch():
    with pytest.raises(ValueError, match="queries have dimension 3, but 4 was expected"):
        check_vectors(np.ones((2, 3)), name="queries", dim=4)


# -- check_k ----------------------------------------------------------------------------------
def test_check_k_accepts_numpy_integers():
    assert check_k(np.int64(3), 5) == 3
    assert check_k(5, 5) == 5


@pytest.mark.parametrize("k", [True, 2.0, "3"])
def test_check_k_rejects_non_integers(k):
    with pytest.raises(TypeError, match="k must be an integer"):
        check_k(k)


def test_check_k_rejects_zero():
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        check_k(0)


def test_check_k_rejects_more_than_the_index_holds():
    with pytest.raises(ValueError, match=r"k=6 is larger than the 5 items in the index; use k <= 5"):
        check_k(6, 5)


def test_value_errors_are_input_errors():
    from simtools.errors import InputError

    with pytest.raises(InputError, match="contain NaN or infinity in 1 row"):
        check_vectors(np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError, match="k must be at least 1"):
        check_k(0)
    with pytest.raises(InputError, match=r"texts\[0\] is empty"):
        check_texts([" "])


def test_blank_mask_finds_lines_with_nothing_visible():
    from simtools._validation import blank_mask

    blank = ["", " ", "\t", "\x01\x02", "\x1c", "\u2028", "\x0b\x0c", "\x85", "\xa0", "\u3000",
             "\ufeff", "\u200b\u200d", "\ufe0f", "\u00ad", "\x7f"]
    visible = ["a", " x ", "\U0001F440", "!", "42", "\u2026", "\uc548", "e\u0301", "\\"]
    assert blank_mask(blank).tolist() == [True] * len(blank)
    assert blank_mask(visible).tolist() == [False] * len(visible)
    assert blank_mask([]).shape == (0,)
