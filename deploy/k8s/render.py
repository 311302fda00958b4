"""Render the KubeRay manifests in this folder from one template: `python deploy/k8s/render.py`.

rayjobs.yaml   one RayJob per stage of jobs/ (each starts its own RayCluster and removes it after)
rayservice.yaml the Serve app (deploy/serve.yaml's applications) on a long-lived RayCluster

Every pod runs the image built by deploy/Dockerfile (the package and its offline assets installed).
Outputs go to $RAYDEMAND_STORAGE (a URI pyarrow can write, e.g. s3://bucket/raydemand), set on the
head container; the entrypoint's shell expands it. Token auth is on (KubeRay creates the secret);
the dashboard listens on the pod network, where only the operator and the submitter reach it.
tests/test_deploy.py checks that the committed files equal this script's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMAGE = "raydemand:latest"  # docker build -f deploy/Dockerfile -t raydemand:latest .
RAY_VERSION = "2.60.0"
STORAGE = "s3://CHANGE-ME/raydemand"

# stage -> (GPU workers it may use, extra `--set`s: inputs that an earlier stage wrote to storage)
PREPARED_PRODUCTS = "$RAYDEMAND_STORAGE/prepare/data/visuelle2"
STAGES = {
    "prepare": (0, {}),
    "train_forecast": (2, {"train": PREPARED_PRODUCTS}),
    "train_basket": (2, {}),
    "train_design": (2, {}),
    "train_scorer": (1, {}),
    "tune_basket": (4, {}),
    "tune_forecast": (4, {"train": PREPARED_PRODUCTS}),
    "tune_design": (4, {}),
}
SERVED = ["train_forecast", "train_basket", "train_scorer", "train_design"]
ENV = [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "TRANSFORMERS_OFFLINE", "value": "1"}]


def _container(name: str, cpu: str, memory: str, gpu: int = 0, storage: bool = False) -> dict:
    limits = {"cpu": cpu, "memory": memory} | ({"nvidia.com/gpu": gpu} if gpu else {})
    env = ENV + ([{"name": "RAYDEMAND_STORAGE", "value": STORAGE}] if storage else [])
    return {"name": name, "image": IMAGE, "env": env,
            "resources": {"limits": limits, "requests": {"cpu": cpu, "memory": memory}}}


def cluster_spec(max_gpu_workers: int, serve: bool = False) -> dict:
    head_ports = [{"containerPort": 6379, "name": "gcs-server"}, {"containerPort": 8265, "name": "dashboard"}]
    if serve:
        head_ports.append({"containerPort": 8000, "name": "serve"})
    head = _container("ray-head", "4", "16Gi", storage=True) | {"ports": head_ports}
    spec = {
        "rayVersion": RAY_VERSION,
        "enableInTreeAutoscaling": True,
        "authOptions": {"mode": "token"},
        "headGroupSpec": {
            # 0 CPUs for tasks on the head: it runs drivers, Ray Data's coordinator, the Serve proxy.
            "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
            "template": {"spec": {"containers": [head]}},
        },
        "workerGroupSpecs": [
            {"groupName": "cpu", "replicas": 1, "minReplicas": 1, "maxReplicas": 4, "rayStartParams": {},
             "template": {"spec": {"containers": [_container("ray-worker", "8", "32Gi")]}}},
        ],
    }
    if max_gpu_workers:
        spec["workerGroupSpecs"].append(
            {"groupName": "gpu", "replicas": 0, "minReplicas": 0, "maxReplicas": max_gpu_workers, "rayStartParams": {},
             "template": {"spec": {"containers": [_container("ray-worker", "8", "48Gi", gpu=1)]}}})
    return spec


def rayjob(stage: str) -> dict:
    gpus, inputs = STAGES[stage]
    sets = {"out": f"$RAYDEMAND_STORAGE/{stage}", **inputs}
    entrypoint = f"python jobs/{stage}.py --config jobs/configs/{stage}.yaml " + " ".join(
        f"--set {k}={v}" for k, v in sets.items())
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": f"raydemand-{stage.replace('_', '-')}", "labels": {"app": "raydemand", "stage": stage}},
        "spec": {
            "entrypoint": entrypoint,
            "runtimeEnvYAML": yaml.safe_dump({"working_dir": "/app", "env_vars": {e["name"]: e["value"] for e in ENV}}),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 600,
            "backoffLimit": 2,  # a failed attempt re-runs the stage; it resumes from the checkpoints in storage
            "rayClusterSpec": cluster_spec(gpus),
        },
    }


def rayservice() -> dict:
    serve = yaml.safe_load((ROOT / "deploy" / "serve.yaml").read_text())
    for app in serve["applications"]:  # the models the train stages wrote to storage (replicas download them)
        app["args"]["run_dirs"] = [f"{STORAGE}/{stage}" for stage in SERVED]
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "raydemand-serve", "labels": {"app": "raydemand"}},
        "spec": {
            # The same applications as deploy/serve.yaml; run dirs come from $RAYDEMAND_STORAGE on a real cluster.
            "serveConfigV2": yaml.safe_dump({"applications": serve["applications"]}, sort_keys=False),
            "rayClusterConfig": cluster_spec(2, serve=True),
        },
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # plain repeated blocks, no &id001 anchors
        return True


def _str(dumper: yaml.SafeDumper, text: str):  # embedded YAML (runtimeEnvYAML, serveConfigV2) as a `|` block
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _str)


def render() -> dict[str, str]:
    header = "# Generated by deploy/k8s/render.py; edit that script, not this file.\n"
    jobs = yaml.dump_all([rayjob(s) for s in STAGES], Dumper=_Dumper, sort_keys=False, width=200)
    service = yaml.dump(rayservice(), Dumper=_Dumper, sort_keys=False, width=200)
    return {"rayjobs.yaml": header + jobs, "rayservice.yaml": header + service}


if __name__ == "__main__":
    for name, text in render().items():
        (HERE / name).write_text(text)
        print(f"wrote {HERE / name}", file=sys.stderr)
