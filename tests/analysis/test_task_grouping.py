"""Tests for mtrec.analysis.task_grouping: TAG's exhaustive group selection."""

import itertools

import numpy as np
import pandas as pd
import pytest

from mtrec.analysis import TaskAffinity, group_tasks
from mtrec.analysis.task_grouping import _partitions, grouping_score

NAMES = ["a", "b", "c", "d"]
# Rows source, columns target: a and b help each other, c and d help each
# other, and across the blocks the tasks are neutral or hurt.
BLOCKS = np.array([[0.0, 0.5, -0.1, 0.0],
                   [0.4, 0.0, 0.0, -0.2],
                   [-0.1, 0.0, 0.0, 0.3],
                   [0.0, -0.2, 0.6, 0.0]])


def test_two_groups_follow_the_blocks_with_the_score_by_hand():
    grouping = group_tasks(BLOCKS, 2, task_names=NAMES)
    assert grouping.groups == [["a", "b"], ["c", "d"]]
    # a gets Z[b->a] = .4, b gets .5, c gets Z[d->c] = .6, d gets .3.
    assert grouping.task_scores == pytest.approx({"a": 0.4, "b": 0.5, "c": 0.6, "d": 0.3})
    assert grouping.score == pytest.approx((0.4 + 0.5 + 0.6 + 0.3) / 4)
    assert grouping.overlapping is False


def test_one_group_averages_over_the_group_mates_and_singletons_score_zero():
    one = group_tasks(BLOCKS, 1, task_names=NAMES)
    assert one.groups == [NAMES]
    # a: (.4 - .1 + 0) / 3, b: (.5 + 0 - .2) / 3, c: (-.1 + 0 + .6) / 3, d: (0 - .2 + .3) / 3
    by_hand = {"a": 0.3 / 3, "b": 0.3 / 3, "c": 0.5 / 3, "d": 0.1 / 3}
    assert one.task_scores == pytest.approx(by_hand)
    assert one.score == pytest.approx(sum(by_hand.values()) / 4)
    alone = group_tasks(BLOCKS, 4, task_names=NAMES)
    assert alone.groups == [["a"], ["b"], ["c"], ["d"]] and alone.score == 0.0


def test_the_diagonal_is_ignored_and_frames_and_results_are_accepted():
    noisy = BLOCKS + np.diag([5.0, -3.0, 9.0, 1.0])
    frame = pd.DataFrame(noisy, index=NAMES, columns=NAMES)
    assert group_tasks(frame, 2).groups == [["a", "b"], ["c", "d"]]
    result = TaskAffinity(matrix=noisy, task_names=NAMES, gradient_cosine=np.eye(4),
                          stderr=np.zeros((4, 4)), num_steps=1, num_measured=1,
                          learning_rate=0.1, num_shared_parameters=1)
    grouping = group_tasks(result, 2)
    assert grouping.groups == [["a", "b"], ["c", "d"]]
    assert grouping.score == pytest.approx(0.45)


@pytest.mark.parametrize("num_tasks, num_groups, stirling", [
    (4, 2, 7), (6, 3, 90), (7, 1, 1), (7, 7, 1), (10, 5, 42525)])
def test_partitions_are_counted_by_the_stirling_numbers(num_tasks, num_groups, stirling):
    labels = _partitions(num_tasks, num_groups)
    assert len(labels) == stirling
    # each one distinct, with exactly num_groups non-empty groups
    assert len({tuple(row) for row in labels}) == stirling
    assert all(len(set(row)) == num_groups for row in labels)


@pytest.mark.parametrize("num_groups", [2, 3])
def test_the_search_finds_the_brute_force_optimum(num_groups):
    rng = np.random.default_rng(num_groups)
    z = rng.normal(size=(6, 6))
    names = [f"t{i}" for i in range(6)]
    best = -np.inf
    # every assignment of 6 tasks to labels, kept when all groups are used
    for labels in itertools.product(range(num_groups), repeat=6):
        if len(set(labels)) < num_groups:
            continue
        groups = [[n for n, l in zip(names, labels) if l == g] for g in range(num_groups)]
        best = max(best, grouping_score(z, groups, task_names=names)[0])
    grouping = group_tasks(z, num_groups, task_names=names)
    assert grouping.score == pytest.approx(best)
    assert grouping_score(z, grouping.groups, task_names=names)[0] == pytest.approx(best)
    assert sorted(t for g in grouping.groups for t in g) == names


def test_overlapping_groups_let_a_helpful_task_serve_two_groups():
    # b helps a and c, but a and c hurt each other.
    names = ["a", "b", "c"]
    z = np.array([[0.0, 0.1, -0.5],
                  [0.5, 0.0, 0.5],
                  [-0.5, 0.1, 0.0]])
    disjoint = group_tasks(z, 2, task_names=names)
    assert disjoint.score == pytest.approx((0.5 + 0.1 + 0.0) / 3)
    overlapping = group_tasks(z, 2, task_names=names, overlapping=True)
    assert overlapping.groups == [["a", "b"], ["b", "c"]]
    assert overlapping.task_scores == pytest.approx({"a": 0.5, "b": 0.1, "c": 0.5})
    assert overlapping.score == pytest.approx(1.1 / 3) and overlapping.overlapping


@pytest.mark.parametrize("num_groups", [0, 5, 1.5, True, "2"])
def test_num_groups_out_of_range_is_refused(num_groups):
    with pytest.raises(ValueError, match=r"num_groups must be an integer in \[1, 4\]"):
        group_tasks(BLOCKS, num_groups, task_names=NAMES)


def test_too_many_tasks_for_the_exhaustive_search_are_refused():
    with pytest.raises(ValueError, match="exact up to 10 tasks"):
        group_tasks(np.zeros((11, 11)), 3)
    with pytest.raises(ValueError, match="more than the 2,000,000"):
        group_tasks(np.zeros((10, 10)), 3, overlapping=True)


@pytest.mark.parametrize("matrix, names, message", [
    (np.zeros((3, 2)), None, "square"),
    (np.array([[0.0, np.nan], [0.1, 0.0]]), ["x", "y"], "x -> y is nan"),
    (np.zeros((2, 2)), ["x", "x"], "distinct names"),
])
def test_malformed_affinities_are_refused(matrix, names, message):
    with pytest.raises(ValueError, match=message):
        group_tasks(matrix, 1, task_names=names)
