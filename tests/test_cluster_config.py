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
