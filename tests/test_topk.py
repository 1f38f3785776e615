"""Top-k selection: the block-wise path against the direct one, ties, threads."""

import numpy as np
import pytest

import simtools.index.topk as topk


def test_topk_is_sorted_and_breaks_ties_by_column():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 0.0]])
    values, columns = topk.topk(scores, 3, largest=True)
    assert columns.tolist() == [[1, 2, 3]] and values.tolist() == [[3.0, 3.0, 2.0]]
    values, columns = topk.topk(scores, 10, largest=False)
    assert columns.tolist() == [[4, 0, 3, 1, 2]]


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_block_selection_equals_direct_selection(largest, values, rng):
    n = topk.SELECTION_BLOCK * 80 + 37  # a short last block too
    if values == "distinct":
        scores = rng.normal(size=(40, n)).astype(np.float32)
    else:  # few distinct values: the k-th best ties across blocks, and ties go by column
        scores = rng.integers(0, 6, size=(40, n)).astype(np.float32)
    scores[3, -5:] = (100 + np.arange(5)) * (1 if largest else -1)  # winners in the last block
    for k in (1, 10):
        got = topk.topk_rows(scores, k, largest)
        want = topk._topk_rows_direct(scores, k, largest)
        np.testing.assert_array_equal(got[0], want[0])
        # the columns hold those scores, once each, and tied scores come in column order
        np.testing.assert_array_equal(np.take_along_axis(scores, got[1], axis=1), got[0])
        assert all(len(set(row)) == k for row in got[1].tolist())
        same = got[0][:, 1:] == got[0][:, :-1]
        assert (got[1][:, 1:][same] > got[1][:, :-1][same]).all()
        if values == "distinct":
            np.testing.assert_array_equal(got[1], want[1])
