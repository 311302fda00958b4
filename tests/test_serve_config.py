"""deploy/serve.yaml against Ray 2.60's Serve config schema and the application's own config;
run-directory recognition. No Ray cluster needed."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import yaml

import serve_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]


def test_serve_yaml_is_a_valid_serve_config():
    from ray.serve.schema import ServeDeploySchema

    from raydemand.serve.config import MODEL_DEPLOYMENTS, AppConfig, BatchConfig

    raw = yaml.safe_load((ROOT / "deploy" / "serve.yaml").read_text())
    schema = ServeDeploySchema.model_validate(raw)
    assert schema.http_options.host == "127.0.0.1"
    (app,) = schema.applications
    module, _, attr = app.import_path.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))
    AppConfig.model_validate(app.args)
    # what `serve run` / `serve deploy` do with the import path and args (run_dirs emptied: none exist here)
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    built = call_user_app_builder_with_args_if_necessary(getattr(importlib.import_module(module), attr),
                                                          {**app.args, "run_dirs": []})
    assert built._bound_deployment.name == "Ingress"  # HTTP reaches the app through its ingress
    names = {d.name for d in app.deployments}
    assert names <= {"Ingress", *MODEL_DEPLOYMENTS} and "Forecaster" in names
    for d in app.deployments:
        if d.name != "Ingress":
            BatchConfig.model_validate(d.user_config)
            assert d.max_ongoing_requests >= d.user_config["max_batch_size"]


def test_read_serve_config_gives_the_builder_its_deployment_options(tmp_path):
    from raydemand.config import ConfigError
    from raydemand.serve.app import read_serve_config

    args, deployments, http = read_serve_config(str(ROOT / "deploy" / "serve.yaml"))
    assert http == {"host": "127.0.0.1", "port": 8000}
    assert "run_dirs" in args
    assert deployments["Forecaster"]["autoscaling_config"]["max_replicas"] >= 1
    assert deployments["Forecaster"]["user_config"]["max_batch_size"] == 32
    assert "name" not in deployments["Forecaster"] and "num_replicas" not in deployments["Forecaster"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: [{name: x, import_path: raydemand.serve.app:build_app, route_prefix: 5}]\n")
    with pytest.raises(ConfigError, match="not a valid Serve config"):
        read_serve_config(str(bad))


def test_run_kinds(tmp_path):
    from raydemand.errors import InputError
    from raydemand.serve.runs import group_runs, run_kind

    assert run_kind(fx.basket_run(tmp_path / "b")) == "basket"
    assert run_kind(fx.scorer_run(tmp_path / "s")) == "scorer"
    assert run_kind(fx.gan_run(tmp_path / "g")) == "gan"
    with pytest.raises(InputError, match="no model.pt"):
        run_kind(tmp_path / "nothing")
    with pytest.raises(InputError, match="two basket runs"):
        group_runs([str(tmp_path / "b"), str(fx.basket_run(tmp_path / "b2"))])


def test_run_dirs_may_be_storage_uris(tmp_path):
    from raydemand.serve.runs import fetch, group_runs, model_version

    local = fx.basket_run(tmp_path / "runs" / "basket")
    uri = local.as_uri()  # file:///...
    assert group_runs([uri]) == {"basket": uri}
    with fetch(uri) as copy:
        assert copy != local and (copy / "model.pt").read_bytes() == (local / "model.pt").read_bytes()
        assert model_version(copy) == model_version(local)
    assert not copy.exists()  # the copy lives only while loading
    with pytest.raises(FileNotFoundError, match="not found"):
        with fetch((tmp_path / "missing").as_uri()):
            pass


def test_app_config_rejects_unknown_batched_deployment():
    from pydantic import ValidationError

    from raydemand.serve.config import AppConfig

    with pytest.raises(ValidationError, match="Forecastr"):
        AppConfig.model_validate({"batching": {"Forecastr": {"max_batch_size": 4}}})


def test_cli_rejects_a_folder_that_is_no_run(tmp_path, capsys):
    import argparse

    from raydemand.cli import run_command
    from raydemand.serve.cli import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(tmp_path), "--port", "8999"])
    assert run_command(lambda: run(args)) == 2
    assert "no model.pt" in capsys.readouterr().err
    detached = parser.parse_args([str(fx.basket_run(tmp_path / "b")), "--detach"])
    if not os.environ.get("RAY_ADDRESS"):
        assert run_command(lambda: run(detached)) == 2
        assert "--detach needs a running cluster" in capsys.readouterr().err
