"""Metrics against numbers worked out by hand, baselines, features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from raydemand.basket.baselines import baseline_scores
from raydemand.basket.features import FEATURES, user_product_features
from raydemand.basket.metrics import all_metrics, best_threshold, ranking_metrics, threshold_metrics


def test_ranking_metrics_by_hand():
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    target = np.array([[False, True, False, True], [True, False, False, False]])
    m = ranking_metrics(scores, target, k=2)
    # user 0: top2 = [0, 1], one hit at rank 2; user 1: top2 = [3, 2], no hit
    assert m["precision@2"] == pytest.approx((0.5 + 0) / 2)
    assert m["recall@2"] == pytest.approx((0.5 + 0) / 2)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg@2"] == pytest.approx(ndcg0 / 2)
    assert m["phr@2"] == pytest.approx(0.5)


def test_missed_products_count_against_recall_and_f1():
    scores = np.array([[0.9, 0.1]])
    target = np.array([[True, False]])
    assert ranking_metrics(scores, target, 1)["recall@1"] == 1.0
    assert ranking_metrics(scores, target, 1, missed=np.array([1]))["recall@1"] == 0.5
    assert threshold_metrics(scores, target, 0.5, np.array([1]))["f1_micro"] == pytest.approx(2 / 3)


def test_minus_inf_is_not_a_recommendation():
    scores = np.array([[0.5, -np.inf, -np.inf]])
    target = np.array([[False, True, False]])
    m = ranking_metrics(scores, target, 3)
    assert m["recall@3"] == 0.0 and m["precision@3"] == 0.0


def test_threshold_metrics_and_best_threshold():
    scores = np.array([[0.9, 0.6, 0.2], [0.7, 0.3, 0.1]])
    target = np.array([[True, False, False], [True, True, False]])
    at = threshold_metrics(scores, target, 0.5)
    # predicted {0,1} and {0}: TP 2, FP 1, FN 1 -> micro 2*2/(4+1+1)
    assert at["f1_micro"] == pytest.approx(4 / 6)
    # per product: p0 tp2 -> 1; p1 tp0 fp1 fn1 -> 0; p2 never seen -> left out
    assert at["f1_macro"] == pytest.approx(0.5)
    assert best_threshold(scores, target, [0.25, 0.5, 0.95]) == 0.25  # {0,1},{0,1}: f1 = 6/8
    full = all_metrics(scores, target, 2, 0.5)
    assert full["threshold"] == 0.5 and full["users"] == 2


def test_features_and_baselines():
    # one window, 3 orders of history (ages 2, 1, 0): product 0 in all, product 1 only in the oldest
    rows = np.array([0, 0, 0, 0])
    products = np.array([0, 1, 0, 0])
    ages = np.array([2, 2, 1, 0])
    f = user_product_features(rows, products, ages, np.array([3]), 3, decay=0.5)
    freq, decayed, last, recency = (FEATURES.index(n) for n in ("freq", "decayed", "in_last", "recency"))
    np.testing.assert_allclose(f[0, :, freq], [1.0, 1 / 3, 0.0])
    np.testing.assert_allclose(f[0, :, decayed], [1.0, 0.25 / 1.75, 0.0])
    np.testing.assert_allclose(f[0, :, last], [1, 0, 0])
    np.testing.assert_allclose(f[0, :, recency], [1.0, 1 / 3, 0.0])
    pop = np.array([0.1, 0.2, 0.5])
    assert np.argmax(baseline_scores("gtopfreq", f, pop)[0]) == 2
    p = baseline_scores("ptopfreq", f, pop)[0]
    assert p[0] == 1.0 and np.isneginf(p[2])
    gp = baseline_scores("gptopfreq", f, pop)[0]
    assert list(np.argsort(-gp)) == [0, 1, 2] and 0 < gp[2] < gp[1]
