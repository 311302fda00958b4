from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_cluster_yaml_passes_rays_own_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((ROOT / "cluster.yaml").read_text()))
    validate_config(config)
    assert config["available_node_types"]["gpu_worker"]["min_workers"] == 0
    # The dashboard (job submission endpoint) must stay on loopback on the head node.
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])
    # Token auth on every node, with one token file shared by all of them.
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c]
    assert starts and all(c.startswith("RAY_AUTH_MODE=token ") for c in starts)
    assert "/home/ubuntu/.ray/auth_token" in config["file_mounts"]
    # The package is installed on every node with the same pins as here.
    assert any("-c /home/ubuntu/raydemand/constraints.txt" in c for c in config["setup_commands"])
