from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.customers.lookalike import lookalikes
from recsys.spreadsheet_cells import formula_safe, unescape_formula


def similarity() -> sp.csr_matrix:
    """Five customers' neighbourhoods (rows need not be symmetric: each keeps its own nearest)."""
    return sp.csr_matrix(np.array([
        [0.0, 0.6, 0.2, 0.0, 0.0],   # 0: on seeds 0.6 of 0.8
        [0.6, 0.0, 0.0, 0.0, 0.0],   # 1: seed
        [0.1, 0.3, 0.0, 0.3, 0.3],   # 2: on seeds 0.6 (1 and 3) of 1.0
        [0.0, 0.0, 0.5, 0.0, 0.0],   # 3: seed
        [0.0, 0.0, 0.4, 0.0, 0.0],   # 4: no seed neighbour: never in the audience
    ]))


def test_audience_is_ranked_by_the_seed_share_of_each_neighbourhood_shrunk_to_the_base_rate():
    found = lookalikes(similarity(), np.array([1, 3]), size=10)
    assert found.rows.tolist() == [0, 2]
    # neighbourhood weights 0.8, 0.6, 1.0, 0.5, 0.4: median 0.6; seeds are 2 of 5 customers (0.4)
    # row 0: (0.6 + 0.6 * 0.4) / (0.8 + 0.6) = 0.6; row 2: (0.6 + 0.24) / (1.0 + 0.6) = 0.525
    np.testing.assert_allclose(found.seed_share, [0.6, 0.525])
    assert found.seed_neighbours.tolist() == [1, 2]
    assert found.reachable == 2


def test_size_cuts_the_audience_and_ties_go_to_more_seed_neighbours_then_the_earlier_row():
    assert lookalikes(similarity(), np.array([1, 3]), size=1).rows.tolist() == [0]
    # rows 0 and 2 both have all of a weight of 1 on seeds; row 2 on two seeds, row 0 on one
    two_seeds = sp.csr_matrix(np.array([[0, 1.0, 0, 0], [0, 0, 0, 0], [0, 0.5, 0, 0.5], [0, 0, 0, 0]]))
    assert lookalikes(two_seeds, np.array([1, 3]), size=2).rows.tolist() == [2, 0]
    # all on one seed each: the heavier neighbourhood is more evidence, so it moves less towards the base rate
    lighter = sp.csr_matrix(np.array([[0, 0.2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.9], [0, 0, 0, 0]]))
    assert lookalikes(lighter, np.array([1, 3]), size=2).rows.tolist() == [2, 0]
    # the same weight on one seed each: the earlier row first
    even = sp.csr_matrix(np.array([[0, 0.5, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.5], [0, 0, 0, 0]]))
    assert lookalikes(even, np.array([1, 3]), size=2).rows.tolist() == [0, 2]


def test_seeds_are_never_in_their_own_audience_and_size_must_be_positive():
    found = lookalikes(similarity(), np.array([0, 1, 2, 3]), size=10)
    assert set(found.rows.tolist()).isdisjoint({0, 1, 2, 3}) and found.rows.tolist() == [4]
    with pytest.raises(ValueError, match="size must be >= 1"):
        lookalikes(similarity(), np.array([1]), size=0)


def test_an_exported_cell_reads_back_as_the_id_it_was():
    ids = ["=cmd", "-12", "@x", "plain", "'quoted"]
    exported = formula_safe(ids)
    assert exported == ["'=cmd", "'-12", "'@x", "plain", "'quoted"]
    assert [unescape_formula(cell) for cell in exported] == ids
