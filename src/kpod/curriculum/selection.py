"""Question selection at one stage (Eq. 11-13), vectorized with numpy.

At stage t the eligible questions (c_i > 0) have costs w_i (the difficulty of the steps they would
newly output) and clusters; the budget is Delta_D = D(t) - (difficulty already scheduled). Eq. 12:

    F(S) = -(Delta_D - w(S)) + beta * sum_k sqrt(|C_k & S|),  subject to  w(S) <= Delta_D.

Every solver here works on g(S) = F(S) + Delta_D = w(S) + beta * sum_k sqrt(|C_k & S|), which is
monotone submodular with g(empty) = 0 (approximation guarantees hold for g, not for F). The marginal
gain of question i in cluster k with m already chosen there is w_i + beta (sqrt(m+1) - sqrt(m)); its
density is 1 + beta (sqrt(m+1) - sqrt(m)) / w_i. Inside a cluster the density falls along ascending
cost, so the density greedy is a K-way merge of per-cluster cost-sorted lists, and a cluster whose
cheapest remaining question no longer fits is closed for the stage (see docs/kpod_schedule.md).

Never select by the largest F ignoring cost: that escalates the questions whose next step is hardest,
the reverse of an easy-to-hard curriculum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SOLVERS = ("greedy", "greedy_max", "ftgp")


def diversity_gain(m: np.ndarray | int) -> np.ndarray:
    """sqrt(m+1) - sqrt(m), written as 1 / (sqrt(m+1) + sqrt(m)) to stay accurate for large m."""
    m = np.asarray(m, dtype=np.float64)
    return 1.0 / (np.sqrt(m + 1.0) + np.sqrt(m))


def value(costs: np.ndarray, labels: np.ndarray, selected: np.ndarray, budget: float, beta: float) -> float:
    """Eq. 12: F(S) = -(Delta_D - Delta_H(S)) + beta * sum_k sqrt(|C_k & S|), where Delta_H(S) is the
    summed cost of the selected questions (`selected`: indices or a boolean mask)."""
    selected = np.asarray(selected)
    if selected.dtype == bool:
        selected = np.flatnonzero(selected)
    counts = np.bincount(labels[selected], minlength=1) if selected.size else np.zeros(1)
    return float(-(budget - costs[selected].sum()) + beta * np.sqrt(counts).sum())


def gain(costs: np.ndarray, labels: np.ndarray, selected: np.ndarray, beta: float) -> float:
    """g(S) = F(S) + Delta_D = w(S) + beta * sum_k sqrt(|C_k & S|)."""
    return value(costs, labels, selected, 0.0, beta)


@dataclass
class Selection:
    """The chosen questions (indices into the stage's eligible list), the budget they spent, g(S), the
    per-stage upper bound on g(OPT), and their ratio (the certificate)."""

    indices: np.ndarray
    spent: float
    gain: float
    bound: float

    @property
    def ratio(self) -> float:
        return 1.0 if self.bound <= 0 else min(1.0, self.gain / self.bound)


@dataclass
class _Order:
    """Questions sorted by cluster, then cost (`by_cluster`, with each cluster's block given by
    `cluster_start`), and the greedy's density order over them (`merged`, positions in by_cluster)."""

    by_cluster: np.ndarray
    cluster_start: np.ndarray
    rank: np.ndarray
    step_gain: np.ndarray
    costs: np.ndarray
    labels: np.ndarray
    density: np.ndarray
    merged: np.ndarray


def _order(costs: np.ndarray, labels: np.ndarray, beta: float) -> _Order:
    counts = np.bincount(labels)
    members = np.argsort(labels.astype(np.int16), kind="stable")  # radix sort
    blocks = np.split(members, np.cumsum(counts)[:-1])
    by_cluster = np.concatenate([b[np.argsort(costs[b])] for b in blocks]) if blocks else members
    cluster_start = np.concatenate([[0], np.cumsum(counts)])
    sorted_labels = labels[by_cluster]
    sorted_costs = costs[by_cluster]
    rank = np.arange(by_cluster.size) - cluster_start[sorted_labels]
    step_gain = beta * diversity_gain(rank)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(sorted_costs > 0, 1.0 + step_gain / sorted_costs, np.inf)
    if beta == 0:
        # every positive-cost density is 1: cheapest first across clusters
        merged = np.argsort(sorted_costs, kind="stable")
    else:
        # K descending runs: timsort merges them in O(n log K); ties go to the lower cluster
        merged = np.argsort(-density, kind="stable")
    return _Order(by_cluster, cluster_start, rank, step_gain, sorted_costs, sorted_labels, density, merged)


def _greedy_positions(order: _Order, budget: float) -> np.ndarray:
    """Walk the density order, adding each question that fits; the first that does not closes its
    cluster (its later questions cost more). At most K closures, each one cumsum + searchsorted."""
    costs, labels = order.costs, order.labels
    taken = []
    pos = order.merged
    spent = 0.0
    while pos.size:
        cum = np.cumsum(np.concatenate([[spent], costs[pos]]))[1:]
        fit = int(np.searchsorted(cum, budget, side="right"))
        taken.append(pos[:fit])
        if fit == pos.size:
            break
        spent = cum[fit - 1] if fit else spent
        rest = pos[fit + 1:]
        pos = rest[labels[rest] != labels[pos[fit]]]
    return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)


def _prefix_counts(order: _Order, taken: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
    """counts[i, k]: questions of cluster k among the first prefixes[i] taken (prefixes ascending)."""
    K = order.cluster_start.size - 1
    first = int(prefixes[0])
    tail = taken[first: int(prefixes[-1])]
    onehot = np.zeros((tail.size + 1, K), dtype=np.int64)
    onehot[np.arange(1, tail.size + 1), order.labels[tail]] = 1
    return np.bincount(order.labels[taken[:first]], minlength=K) + np.cumsum(onehot, axis=0)[prefixes - first]


def _with_augmentation(order: _Order, taken: np.ndarray, prefixes: np.ndarray, budget: float, beta: float):
    """The best of: each prefix of `taken` (lengths `prefixes`) plus the single extra question that raises
    g most and still fits (Greedy+Max). Inside each cluster `taken` holds the cheapest questions, so the
    best extra of a cluster is its dearest fitting question beyond the prefix's share of it. Prefixes
    whose g is below g(taken) minus the largest possible single gain cannot win and are skipped."""
    steps = order.costs[taken] + order.step_gain[taken]
    g_prefix = np.concatenate([[0.0], np.cumsum(steps)])
    spent_prefix = np.concatenate([[0.0], np.cumsum(order.costs[taken])])
    fits = order.costs <= budget
    best_single = float(order.costs[fits].max(initial=0.0)) + beta
    prefixes = prefixes[g_prefix[prefixes] + best_single >= g_prefix[-1]]
    counts = _prefix_counts(order, taken, prefixes)
    spent = spent_prefix[prefixes]
    best_gain = np.zeros(prefixes.size)
    best_pos = np.full(prefixes.size, -1, dtype=np.int64)
    for k in range(counts.shape[1]):
        lo, hi = order.cluster_start[k], order.cluster_start[k + 1]
        if hi == lo:
            continue
        idx = np.searchsorted(order.costs[lo:hi], budget - spent, side="right") - 1
        extra = np.where(idx >= counts[:, k], order.costs[lo:hi][np.maximum(idx, 0)], -np.inf)
        extra = extra + beta * diversity_gain(counts[:, k])
        better = extra > best_gain
        best_gain = np.where(better, extra, best_gain)
        best_pos = np.where(better, lo + idx, best_pos)
    best = int(np.argmax(g_prefix[prefixes] + best_gain))
    chosen = taken[: prefixes[best]]
    return np.append(chosen, best_pos[best]) if best_pos[best] >= 0 else chosen


def _ftgp_positions(order: _Order, budget: float, beta: float, eps: float) -> np.ndarray:
    """Threshold greedy in the manner of FTGP (Li, Feldman, Kazemi, Karbasi, NeurIPS 2022), our reading
    (only the abstract is available): density thresholds fall by (1 - eps) from the best singleton
    density down to eps * M / budget (M = the best singleton value, a lower bound on OPT); each
    threshold scans the remaining questions in ascending cost and adds one whose marginal density
    clears the threshold when it fits. Thresholds nothing can clear are skipped, and a threshold <= 1
    is the last (every density is >= 1). `select` then applies the one-question augmentation to a
    geometric (1 + eps) grid of prefixes."""
    K = order.cluster_start.size - 1
    head = order.cluster_start[:-1].copy()
    end = order.cluster_start[1:]
    fits = order.costs <= budget
    if not fits.any():
        return np.zeros(0, dtype=np.int64)
    floor = eps * float(order.costs[fits].max() + beta) / budget
    finite = np.isfinite(order.density) & fits
    tau0 = float(order.density[finite].max()) if finite.any() else 1.0
    taken: list[np.ndarray] = []
    spent, step = 0.0, 0
    while True:
        tau = tau0 * (1 - eps) ** step
        # inside a cluster the density falls along cost, so the questions clearing tau form a run
        runs = [np.arange(head[k], order.cluster_start[k] + np.searchsorted(
            -order.density[order.cluster_start[k]:end[k]], -tau, side="right")) for k in range(K)]
        cand = np.concatenate(runs)
        cand = cand[np.argsort(order.costs[cand], kind="stable")]
        cum = np.cumsum(np.concatenate([[spent], order.costs[cand]]))[1:]
        fit = int(np.searchsorted(cum, budget, side="right"))
        if fit:
            spent = float(cum[fit - 1])
            taken.append(cand[:fit])
            np.add.at(head, order.labels[cand[:fit]], 1)
        if tau <= 1.0 or tau * (1 - eps) < floor:
            break
        open_heads = head[(head < end)]
        open_heads = open_heads[order.costs[open_heads] <= budget - spent]
        if not open_heads.size:
            break
        top = float(order.density[open_heads].max())
        step = max(step + 1, int(np.ceil(np.log(top / tau0) / np.log(1 - eps) - 1e-12)))
    return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)


def _grid(n: int, eps: float) -> np.ndarray:
    """Prefix lengths 0, 1, and ceil((1 + eps)^i) up to n, plus n."""
    points = {0, n}
    x = 1.0
    while x < n:
        points.add(int(np.ceil(x)))
        x *= 1 + eps
    return np.array(sorted(points), dtype=np.int64)


def _upper_bound(order: _Order, budget: float, beta: float) -> float:
    """An upper bound on g(OPT) (docs/kpod_schedule.md): the fractional knapsack over the items
    (cluster k, m-th cheapest) with cost w_(k,m) and value w_(k,m) + beta (sqrt(m+1) - sqrt(m)).
    OPT's m_k cheapest per cluster, topped up with further items (density >= 1) to w(OPT), is a
    feasible fractional point worth at least g(OPT). Never looser than scheduling.md's
    min(Delta_D, total cost) + beta * LP."""
    costs = order.costs[order.merged]
    values = costs + order.step_gain[order.merged]
    cum = np.cumsum(costs)
    full = int(np.searchsorted(cum, budget, side="right"))
    bound = float(values[:full].sum())
    if full < costs.size:
        left = budget - (cum[full - 1] if full else 0.0)
        bound += values[full] * left / costs[full]
    return bound


def select(costs: np.ndarray, labels: np.ndarray, budget: float, beta: float, solver: str = "greedy_max",
           eps: float = 0.1) -> Selection:
    """Solve Eq. 13 approximately for one stage: maximize F(S) subject to w(S) <= budget.

    `costs` (non-negative) and `labels` (cluster ids 0..K-1) describe the eligible questions. Edge
    cases: a negative budget selects nothing, a zero budget only the zero-cost questions (nothing else
    fits); a budget covering every cost selects all; zero-cost questions are always taken (infinite
    density). Returns the selection with its certificate.
    """
    costs = np.asarray(costs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver '{solver}'; choose one of {', '.join(SOLVERS)}")
    if budget < 0 or costs.size == 0:
        return Selection(np.zeros(0, dtype=np.int64), 0.0, 0.0, 0.0)
    if budget == 0:
        free = np.flatnonzero(costs == 0)
        return Selection(free, 0.0, gain(costs, labels, free, beta), gain(costs, labels, free, beta))
    order = _order(costs, labels, beta)
    bound = _upper_bound(order, budget, beta)
    if costs.sum() <= budget:
        everything = np.arange(costs.size)
        return Selection(everything, float(costs.sum()), gain(costs, labels, everything, beta), bound)
    if solver == "ftgp":
        taken = _ftgp_positions(order, budget, beta, eps)
        positions = _with_augmentation(order, taken, _grid(taken.size, eps), budget, beta)
    else:
        taken = _greedy_positions(order, budget)
        positions = taken if solver == "greedy" else _with_augmentation(
            order, taken, np.arange(taken.size + 1), budget, beta)
    chosen = order.by_cluster[positions]
    return Selection(chosen, float(costs[chosen].sum()), gain(costs, labels, chosen, beta), bound)
