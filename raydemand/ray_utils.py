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
