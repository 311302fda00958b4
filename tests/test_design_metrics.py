"""Design metrics against values known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from raydemand.design.metrics import (
    diversity_ratio,
    feature_metrics,
    frechet_distance,
    health_flags,
    manifold_metrics,
    pixel_features,
    preference,
    separation,
)


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    # Shift by (1, 2, 2): ||mu||^2 = 9. Scale one axis by 3: (sqrt(9) - 1)^2 = 4 more.
    b = a * np.array([1, 1, 3]) + np.array([1, 2, 2])
    assert frechet_distance(a, b) == pytest.approx(13, rel=0.03)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_manifold_metrics_identical_disjoint_and_collapsed():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 4))
    same = manifold_metrics(real, real.copy(), k=5)
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1
    assert same["density"] == pytest.approx(1, rel=0.3)
    far = manifold_metrics(real, real + 100, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    collapsed = manifold_metrics(real, np.repeat(real[:1], 300, axis=0) + 1e-3 * rng.normal(size=(300, 4)), k=5)
    assert collapsed["precision"] > 0.9 and collapsed["coverage"] < 0.1 and collapsed["recall"] < 0.1
    assert set(feature_metrics(real, real, 5)) == {"fd", "precision", "recall", "density", "coverage"}


def test_preference_per_category():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    labels = np.array([0, 0, 1, 1])
    out = preference(probs, labels, ["shirt", "bag"])
    assert out["shirt"] == {"preference": pytest.approx(65), "recognised": 50.0, "n": 2}
    assert out["bag"]["preference"] == pytest.approx(55) and out["bag"]["recognised"] == 50.0
    assert out["all"]["preference"] == pytest.approx(60) and out["all"]["n"] == 4


def test_diversity_ratio_sees_collapse():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(100, 8))
    labels = np.repeat([0, 1], 50)
    healthy = diversity_ratio(rng.normal(size=(100, 8)), real, labels, labels)
    collapsed = diversity_ratio(np.repeat(rng.normal(size=(2, 8)), 50, axis=0), real, labels, labels)
    assert all(0.8 < v < 1.2 for v in healthy.values())
    assert all(v < 1e-6 for v in collapsed.values())


def test_separation_and_health_flags():
    assert separation([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert separation([0.0, 1.0], [2.0, 3.0]) == 0.0
    history = [
        {"epoch": 0, "diversity_min": 0.9, "d_separation": 0.99, "d_loss": 1.0, "g_loss": 1.0},
        {"epoch": 1, "diversity_min": 0.1, "d_separation": 0.99, "d_loss": 1.0, "g_loss": 1.0},
        {"epoch": 2, "diversity_min": 0.9, "d_separation": 0.5, "d_loss": float("nan"), "g_loss": 1.0},
    ]
    flags = health_flags(history, collapse_diversity=0.35, diverge_gap=0.98, diverge_patience=2)
    assert flags == {"mode_collapse_epochs": [1], "divergence_epochs": [1, 2]}


def test_pixel_features_shape():
    assert pixel_features(np.zeros((3, 1, 64, 64), np.float32)).shape == (3, 256)
    assert pixel_features(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 768)


def test_score_markdown_adds_real_reference_and_chance():
    import pandas as pd

    from raydemand.design.score import markdown

    index = pd.Index(["bag", "coat", "all"], name="category")
    report = {"preference": pd.DataFrame({"dcgan": [40.0, 20.0, 30.0]}, index=index),
              "recognised": pd.DataFrame({"dcgan": [50.0, 10.0, 30.0]}, index=index),
              "feature_space": pd.DataFrame(), "categories": ["bag", "coat", "shoe", "hat"],
              "real_test": {"bag": {"preference": 90.0, "recognised": 95.0}, "all": {"preference": 80.0, "recognised": 85.0}}}
    text = markdown(report)
    assert "| category | dcgan | real test images |" in text and "chance 25.0%" in text
    assert "| bag | 40.00 | 90.00 |" in text and "| coat | 20.00 |  |" in text and "| all | 30.0 | 85.0 |" in text
    del report["real_test"], report["categories"]
    assert "real test images" not in markdown(report) and "chance" not in markdown(report)
