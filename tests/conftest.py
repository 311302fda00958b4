"""Shared fixtures: one local Ray cluster per test session, small generated data sets."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray cluster started once; logical CPUs exceed the 2 real cores on purpose.

    Ray workers import the functions they run by module name; test modules are importable there
    because this folder is put on the workers' PYTHONPATH (they inherit the driver's environment).
    """
    import ray
    from ray.data import DataContext

    from raydemand.ray_utils import init_ray

    tests = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [tests, os.environ.get("PYTHONPATH", "")] if p)
    init_ray(num_cpus=4)
    DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def visuelle2_dir(tmp_path_factory):
    """A small generated VISUELLE 2.0-layout data set (read-only: copy it before changing files)."""
    from raydemand.data.synth import synthesize

    out = tmp_path_factory.mktemp("vis2") / "visuelle2"
    synthesize("visuelle2", out, seed=0, scale=120)
    return out


@pytest.fixture(scope="session")
def instacart_dir(tmp_path_factory):
    """A small generated Instacart-layout data set (read-only: copy it before changing files)."""
    from raydemand.data.synth import synthesize

    out = tmp_path_factory.mktemp("ic") / "instacart"
    synthesize("instacart", out, seed=0, scale=200)
    return out
