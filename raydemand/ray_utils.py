"""Starting or joining Ray with this project's defaults."""

from __future__ import annotations

import logging
import os


def init_ray(address: str | None = None, num_cpus: int | None = None, **kwargs) -> None:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a local one.

    A local cluster binds its dashboard to 127.0.0.1 only. Calling this when Ray is already up
    (a test session, a job on a cluster) is a no-op.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    options = dict(logging_level=logging.WARNING, configure_logging=True)
    if address:
        ray.init(address=address, **options, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, dashboard_host="127.0.0.1", include_dashboard=False, **options, **kwargs)


def gpu_available() -> bool:
    """Whether the Ray cluster has a GPU to give to a stage."""
    import ray

    return bool(ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0)


def in_placement_group() -> bool:
    """Whether this process runs in a placement group that captures its child tasks (a Ray Tune trial)."""
    import ray

    if not ray.is_initialized():
        return False
    from ray.util import get_current_placement_group

    return (get_current_placement_group() is not None
            and ray.get_runtime_context().should_capture_child_tasks_in_placement_group)


def outside_placement_group(fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, run in a zero-CPU Ray task on the caller's node but outside its placement
    group when the caller is in one; else called directly. Returns its (concrete, picklable) result.

    A Tune trial's placement group captures its child tasks, and Ray Data (2.60) submits some
    shuffle-map tasks (a groupby's final flush) without a scheduling strategy of their own, so they
    inherit the trial's 0.1-CPU bundle and fail ("cannot fit into any bundles"). Ray Data work that
    a trial runs in its own process goes through here.
    """
    if not in_placement_group():
        return fn(*args, **kwargs)
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # On this node (the caller's local files are its inputs), in no placement group.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    task = ray.remote(num_cpus=0, scheduling_strategy=here, max_retries=0)(fn)
    return ray.get(task.remote(*args, **kwargs))
