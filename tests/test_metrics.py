"""SPEC 3 metrics: exact pass@k values, majority voting rules, averages, cut-off share, bootstrap CI."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from vibethinker.eval.metrics import avg_at_n, bootstrap_ci, cons_at_n, cutoff_ratio, majority_answer, mean_tokens, \
    pass_at_k


def _exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


def test_pass_at_k_worked_values():
    assert pass_at_k(10, 3, 5) == pytest.approx(11 / 12, abs=1e-12)
    assert pass_at_k(16, 4, 8) == pytest.approx(25 / 26, abs=1e-12)
    assert _exact(200, 13, 10) == pytest.approx(0.49755111, abs=1e-8)
    assert pass_at_k(200, 13, 10) == pytest.approx(float(_exact(200, 13, 10)), abs=1e-12)
    for n, c, k in [(64, 1, 1), (64, 63, 8), (8, 0, 4), (1, 1, 1), (1000, 17, 100), (5, 2, 5)]:
        assert pass_at_k(n, c, k) == pytest.approx(float(_exact(n, c, k)), abs=1e-12)


def test_pass_at_k_edges():
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 8, 3) == 1.0  # only 2 wrong < k: every draw of 3 holds a correct one
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=1e-15)
    for n, c, k in [(4, 1, 5), (4, 5, 1), (-1, 0, 1), (4, -1, 1), (4, 1, 0), (4, 1, -2), (4.0, 1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_avg_at_n():
    assert avg_at_n([True, False, True, True]) == 0.75
    assert avg_at_n([False]) == 0.0
    with pytest.raises(ValueError):
        avg_at_n([])


def test_cons_at_n_majority_ties_and_missing():
    assert cons_at_n(["4", "5", "4", None], [True, False, True, False]) == 1.0
    assert cons_at_n(["5", "4", "5", "4", "4"], [False, True, False, True, True]) == 1.0
    # tie between 3 and 7: the earliest-appearing key (3) wins
    assert cons_at_n(["3", "7", "7", "3"], [False, True, True, False]) == 0.0
    assert cons_at_n(["7", "3", "3", "7"], [True, False, False, True]) == 1.0
    # missing answers never vote, even when they are the most frequent "value"
    assert cons_at_n([None, None, None, "2"], [False, False, False, True]) == 1.0
    assert cons_at_n([None, None], [False, False]) == 0.0
    assert cons_at_n([], []) == 0.0
    assert majority_answer([None, "b", "a", "a", "b"]) == "b"
    with pytest.raises(ValueError):
        cons_at_n(["1"], [True, False])


def test_mean_tokens_and_cutoff():
    assert mean_tokens([10, 20, 30]) == 20.0
    assert mean_tokens([]) == 0.0
    assert cutoff_ratio(["stop", "length", "stop", "length"]) == 0.5
    assert cutoff_ratio(["stop"]) == 0.0
    assert cutoff_ratio([]) == 0.0


def test_bootstrap_ci():
    values = [0.0, 0.25, 0.5, 1.0, 1.0, 0.75, 0.0, 0.5]
    lo, hi = bootstrap_ci(values, n_boot=500, seed=0)
    assert 0.0 <= lo <= sum(values) / len(values) <= hi <= 1.0 and lo < hi
    assert bootstrap_ci(values, n_boot=500, seed=0) == (lo, hi)
    assert bootstrap_ci([0.5] * 5) == (0.5, 0.5)
    narrow = bootstrap_ci(values, alpha=0.5)
    assert lo <= narrow[0] <= narrow[1] <= hi
    with pytest.raises(ValueError):
        bootstrap_ci([])
