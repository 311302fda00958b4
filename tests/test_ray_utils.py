"""`outside_placement_group`: work started by a process inside a child-capturing placement group (a
Tune trial) that needs more than the group's bundle runs anyway, on the caller's node."""

from __future__ import annotations

import pytest


def _one_cpu_task() -> str:
    import ray

    @ray.remote(num_cpus=1)
    def f():
        return ray.get_runtime_context().get_node_id()

    return ray.get(f.remote())


def _in_small_group(use_helper: bool):
    from raydemand.ray_utils import in_placement_group, outside_placement_group

    assert in_placement_group()
    return outside_placement_group(_one_cpu_task) if use_helper else _one_cpu_task()


def test_outside_placement_group_escapes_a_capturing_group(ray_session):
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from raydemand.ray_utils import in_placement_group, outside_placement_group

    assert not in_placement_group() and outside_placement_group(lambda x: x + 1, 1) == 2  # driver: direct call
    pg = placement_group([{"CPU": 0.1}])  # what Tune reserves for a trial's driver function
    ray.get(pg.ready())
    try:
        run = ray.remote(num_cpus=0.1)(_in_small_group).options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, placement_group_capture_child_tasks=True))
        # Inside the group a 1-CPU child cannot fit its 0.1-CPU bundle (Ray refuses it at submission) ...
        with pytest.raises(Exception, match="cannot fit into any bundles"):
            ray.get(run.remote(False))
        # ... through the helper it runs, on the caller's node.
        assert ray.get(run.remote(True)) == ray.get_runtime_context().get_node_id()
    finally:
        remove_placement_group(pg)
