"""`raydemand serve [--host 127.0.0.1] [--port 8000] RUN_DIRs...`: deploy the HTTP API and keep it up."""

from __future__ import annotations

import argparse
import json

from raydemand.cli import add_config_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Deploy the Ray Serve application for the given run directories (forecast, basket, "
                          "GAN and scorer runs are recognised from their model.pt) and serve until Ctrl-C. "
                          "Endpoints: GET /healthz, POST /v1/forecast, /v1/design/score, /v1/basket/predict; "
                          "OpenAPI at /docs. With $RAYDEMAND_SERVE_TOKEN set every endpoint but /healthz "
                          "needs 'Authorization: Bearer TOKEN'. --config takes the application's args "
                          "(limits, batching, token_env; see docs/serve.md).")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="train outputs to serve (one per family); folders or storage URIs (s3://, gs://, file://)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, help="HTTP port (default 8000)")
    parser.add_argument("--serve-config", metavar="YAML",
                        help="a Serve config file (deploy/serve.yaml): its raydemand application's args, "
                             "per-deployment options (replicas, autoscaling, batching, resources) and "
                             "http_options; flags and RUN_DIRs win")
    parser.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--detach", action="store_true",
                        help="deploy, print the URL and exit; the application stays up on the cluster it "
                             "joined (--address or RAY_ADDRESS, as in a `ray job submit` deploy); remove it "
                             "with `serve shutdown`")
    add_config_args(parser)


def run(args: argparse.Namespace) -> int:
    import os
    import time

    from raydemand.config import load_config, with_overrides
    from raydemand.errors import InputError
    from raydemand.serve.config import AppConfig
    from raydemand.serve.runs import group_runs

    deployments, http = {}, {"host": "127.0.0.1", "port": 8000}
    if args.serve_config:
        from raydemand.serve.app import read_serve_config

        if args.config:
            raise InputError("give the application's args in --serve-config's `args:` or in --config, not both")
        app_args, deployments, http = read_serve_config(args.serve_config)
        cfg = with_overrides(load_config(AppConfig, **{**app_args, "run_dirs": args.run_dirs}), args.overrides)
    else:
        cfg = load_config(AppConfig, args.config, args.overrides, run_dirs=args.run_dirs)
    if args.detach and not (args.address or os.environ.get("RAY_ADDRESS")):
        raise InputError("--detach needs a running cluster to leave the application on (--address or RAY_ADDRESS); "
                         "a local Ray started by this command would stop with it")
    runs = group_runs(cfg.run_dirs)  # wrong folders fail here, before Ray is imported or started
    from ray import serve

    from raydemand.ray_utils import init_ray
    from raydemand.serve.app import start
    from raydemand.serve.deployments import LOCAL_CPUS

    local = not (args.address or os.environ.get("RAY_ADDRESS"))
    init_ray(address=args.address, num_cpus=max(os.cpu_count() or 1, LOCAL_CPUS) if local else None)
    url = start(cfg, args.host or http["host"], args.port or http["port"], deployments=deployments)
    print(json.dumps({"url": url, "docs": f"{url}/docs", "runs": runs}, indent=2), flush=True)
    if args.detach:
        return 0
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0
