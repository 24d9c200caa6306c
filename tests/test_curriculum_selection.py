"""Eq. 11-13 solvers: brute force on small instances, a naive O(n^2) greedy as oracle, edge cases."""

import itertools
import math

import numpy as np
import pytest

from kpod.curriculum.selection import _greedy_positions, _order, diversity_gain, gain, select, value


def naive_density_greedy(costs, labels, budget, beta):
    """Textbook cost-benefit greedy: repeatedly add the fitting question of highest marginal density
    (ties: lower cluster, then cheaper; beta = 0: cheaper), O(n^2)."""
    chosen, spent, counts = [], 0.0, {}
    remaining = set(range(len(costs)))
    while True:
        best = None
        for i in remaining:
            if spent + costs[i] > budget:
                continue
            m = counts.get(labels[i], 0)
            density = math.inf if costs[i] == 0 else 1.0 + beta * float(diversity_gain(m)) / costs[i]
            key = (-density, labels[i] if beta > 0 else 0, costs[i], i)
            if best is None or key < best[0]:
                best = (key, i)
        if best is None:
            return chosen
        i = best[1]
        chosen.append(i)
        spent += costs[i]
        counts[labels[i]] = counts.get(labels[i], 0) + 1
        remaining.remove(i)


def brute_force(costs, labels, budget, beta):
    best = 0.0
    for r in range(len(costs) + 1):
        for subset in itertools.combinations(range(len(costs)), r):
            subset = np.array(subset, dtype=int)
            if costs[subset].sum() <= budget:
                best = max(best, gain(costs, labels, subset, beta))
    return best


def random_instance(rng, n_max=12):
    n = int(rng.integers(1, n_max + 1))
    costs = rng.gamma(1.0, float(rng.choice([0.5, 5.0, 30.0])), n)
    if rng.random() < 0.2:
        costs[rng.integers(0, n)] = 0.0
    labels = rng.integers(0, int(rng.integers(1, 4)), n)
    beta = float(rng.choice([0.0, 1.0, 12.0]))
    return costs, labels, float(rng.uniform(0, costs.sum() * 1.1)), beta


def test_value_function_by_hand():
    costs, labels = np.array([1.0, 2.0, 3.0]), np.array([0, 0, 1])
    # F = -(10 - 6) + 2 (sqrt 2 + 1)
    assert value(costs, labels, np.array([0, 1, 2]), 10.0, 2.0) == pytest.approx(-4 + 2 * (math.sqrt(2) + 1))
    assert value(costs, labels, np.array([], dtype=int), 10.0, 2.0) == -10.0
    assert gain(costs, labels, np.array([True, False, True]), 2.0) == pytest.approx(4 + 4)


def test_against_brute_force():
    rng = np.random.default_rng(0)
    worst = {"greedy": 1.0, "greedy_max": 1.0, "ftgp": 1.0}
    for _ in range(150):
        costs, labels, budget, beta = random_instance(rng)
        opt = brute_force(costs, labels, budget, beta)
        for solver in worst:
            sel = select(costs, labels, budget, beta, solver)
            assert costs[sel.indices].sum() <= budget
            assert len(set(sel.indices.tolist())) == sel.indices.size
            assert sel.gain == pytest.approx(gain(costs, labels, sel.indices, beta))
            assert sel.bound >= opt - 1e-9, "the certificate's bound must never fall below the optimum"
            assert sel.gain <= opt + 1e-9
            if opt > 0:
                worst[solver] = min(worst[solver], sel.gain / opt)
    assert worst["greedy_max"] >= 0.5  # Yaroslavtsev, Zhou, Avdiukhin 2020
    assert worst["ftgp"] >= 0.5 - 0.1  # 1/2 - eps


def test_fast_greedy_equals_naive_greedy():
    rng = np.random.default_rng(1)
    for _ in range(200):
        costs, labels, budget, beta = random_instance(rng, n_max=40)
        order = _order(costs, labels, beta)
        fast = order.by_cluster[_greedy_positions(order, budget)].tolist()
        assert fast == naive_density_greedy(costs, labels, budget, beta)


def test_edge_cases():
    costs, labels = np.array([0.0, 1.0, 2.0, 5.0]), np.array([0, 1, 1, 0])
    for solver in ("greedy", "greedy_max", "ftgp"):
        assert select(costs, labels, -1.0, 12.0, solver).indices.size == 0
        assert select(costs, labels, 0.0, 12.0, solver).indices.tolist() == [0]  # only the free question fits
        assert sorted(select(costs, labels, 8.0, 12.0, solver).indices.tolist()) == [0, 1, 2, 3]
        chosen = set(select(costs, labels, 2.5, 12.0, solver).indices.tolist())
        assert 0 in chosen and 3 not in chosen  # the free one always, the one over budget never
        assert select(np.zeros(0), np.zeros(0, dtype=int), 5.0, 12.0, solver).indices.size == 0
    with pytest.raises(ValueError, match="unknown solver"):
        select(costs, labels, 1.0, 12.0, "largest_f")


def test_diversity_prefers_cheap_questions_balanced_across_clusters():
    # cluster 0 has many cheap questions, cluster 1 a few dearer ones; beta spreads the selection
    # densities: cluster 0's 1 + 12 (sqrt(m+1) - sqrt(m)) / 0.1 = 121, 50.7, 39.1, ...; cluster 1's first 41
    costs = np.array([0.1] * 10 + [0.3] * 3)
    labels = np.array([0] * 10 + [1] * 3)
    spread = select(costs, labels, 1.0, 12.0, "greedy").indices
    assert np.bincount(labels[spread], minlength=2).tolist() == [7, 1]
    cheapest = select(costs, labels, 1.0, 0.0, "greedy").indices
    assert set(cheapest.tolist()) == set(range(10))  # beta = 0: the cheapest first, no balancing


def test_certificate_on_a_large_instance():
    rng = np.random.default_rng(2)
    costs = rng.gamma(2.0, 0.5, 20000)
    labels = rng.integers(0, 5, 20000)
    for solver in ("greedy", "greedy_max", "ftgp"):
        sel = select(costs, labels, costs.sum() * 0.2, 12.0, solver)
        assert 0.99 < sel.ratio <= 1.0
