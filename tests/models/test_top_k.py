"""top_k: the row-wise best entries, best first, ties to the lower item row, -inf never returned."""

import numpy as np
import pytest

from recsys.models.base import top_k


def stable_reference(scores: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.where(np.isneginf(np.take_along_axis(scores, order, axis=1)), -1, order)


@pytest.mark.parametrize("k", [1, 3, 7, 49])
def test_ties_at_the_cut_go_to_the_lower_item_rows(k):
    # few distinct values, so most rows have ties across the k-th place, where a partial sort
    # keeps an arbitrary subset of the tied entries
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(300, 50)).astype(np.float32)
    rows, values = top_k(scores, k)
    assert rows.tolist() == stable_reference(scores, k).tolist()
    assert values.tolist() == np.take_along_axis(scores, rows, axis=1).tolist()


def test_negative_infinity_is_never_returned_and_pads_with_minus_one():
    scores = np.array([[0.5, -np.inf, 0.5, -np.inf, 0.1],
                       [-np.inf, -np.inf, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    rows, values = top_k(scores, 4)
    assert rows.tolist() == [[0, 2, 4, -1], [-1, -1, -1, -1]]
    assert values[0, :3].tolist() == pytest.approx([0.5, 0.5, 0.1])
    assert np.isneginf(values[0, 3]) and np.isneginf(values[1]).all()


def test_k_wider_than_the_catalogue_is_padded():
    rows, values = top_k(np.array([[1.0, 3.0, 2.0]], dtype=np.float32), 5)
    assert rows.tolist() == [[1, 2, 0, -1, -1]]
    assert np.isneginf(values[0, 3:]).all()
