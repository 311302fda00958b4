"""Cluster manifests: KubeRay RayJob/RayService (deploy/k8s/) and their consistency with jobs/ and Serve."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _render():
    spec = importlib.util.spec_from_file_location("render", ROOT / "deploy" / "k8s" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_manifests_are_what_render_py_writes():
    for name, text in _render().render().items():
        assert (ROOT / "deploy" / "k8s" / name).read_text() == text, f"run `python deploy/k8s/render.py` ({name})"


def _check_cluster(spec: dict, where: str) -> None:
    import ray

    assert spec["rayVersion"] == ray.__version__, f"{where}: rayVersion differs from the installed Ray"
    assert spec["authOptions"] == {"mode": "token"}, where
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] and head["resources"]["limits"]["cpu"], where
    assert all(isinstance(v, str) for v in spec["headGroupSpec"]["rayStartParams"].values()), where
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"] and 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], where
        container = group["template"]["spec"]["containers"][0]
        assert container["image"] == head["image"], where


def test_rayjobs_run_existing_stages_with_flags_their_commands_accept():
    from raydemand import jobs
    from raydemand.cli import build_parser

    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "rayjobs.yaml").read_text()))
    stages = {d["metadata"]["labels"]["stage"] for d in docs}
    assert stages == {"prepare", *jobs.STAGES} - {"deploy"}
    parser = build_parser()
    for doc in docs:
        assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
        spec = doc["spec"]
        _check_cluster(spec["rayClusterSpec"], doc["metadata"]["name"])
        assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"] == "/app"
        argv = shlex.split(spec["entrypoint"])
        assert argv[:2] == ["python", f"jobs/{doc['metadata']['labels']['stage']}.py"]
        assert (ROOT / argv[1]).is_file()
        config = ROOT / argv[argv.index("--config") + 1]
        stage = doc["metadata"]["labels"]["stage"]
        assert config.is_file(), config
        sets = [argv[i + 1].replace("$RAYDEMAND_STORAGE", "s3://bucket") for i, a in enumerate(argv) if a == "--set"]
        spec_flags = jobs.load_spec(config, sets)
        assert spec_flags["out"].startswith("s3://bucket/")
        parser.parse_args(jobs.STAGES[stage] + jobs.to_argv(spec_flags))


def test_rayservice_serves_the_serve_config_through_rays_own_schema():
    path = ROOT / "deploy" / "k8s" / "rayservice.yaml"
    from ray.serve.schema import ServeDeploySchema

    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayService"
    _check_cluster(doc["spec"]["rayClusterConfig"], "rayservice")
    config = ServeDeploySchema.model_validate(yaml.safe_load(doc["spec"]["serveConfigV2"]))
    assert config.applications[0].import_path == yaml.safe_load(
        (ROOT / "deploy" / "serve.yaml").read_text())["applications"][0]["import_path"]


def test_dockerfile_installs_the_package_with_the_constraints():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "-c constraints.txt" in text and "COPY jobs" in text
