"""Serve load benchmark: the raydemand HTTP API on a local Ray cluster, driven over loopback by an
asyncio (aiohttp) client.

(a) Each endpoint (forecast, design score composed with the forecaster, basket) at rising
    concurrency: requests/s, p50/p95/p99 latency, errors (any status but 200).
(b) The forecaster batched (`@serve.batch`, max_batch_size 32, at each batch wait of --waits)
    against unbatched (max_batch_size 1), set through the deployment's user_config, at concurrency
    32, alternating, --rounds times each; the ratio of the best rounds (products carry a caption, so
    the Captioner is not involved and the ratio is the Forecaster's own).
(c) --bad mixed malformed requests (bad JSON, wrong shapes, missing fields, unknown products,
    undecodable images, decompression bombs, oversized and chunked bodies, unknown paths and
    methods) at concurrency 16: count of responses >= 500 (target 0), and good-request p50
    latency before and after.
(d) A replica's process killed (ray.kill on the Forecaster replica actor) during a load run at
    concurrency 8: success rate and time until requests succeed again (Serve starts a new replica).

Run directories are the tests' (small untrained models of the real classes, `tests/serve_fixtures.py`).
The machine may be shared: every timed block reports the CPU seconds other processes used meanwhile.

    python bench/serve_load.py [--sections abcd] [--levels 1,4,16,32] [--requests 192] [--waits 0.01,0.05]
                               [--bad 1000] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

import serve_fixtures as fx  # noqa: E402
from data_pipeline import CpuWatch  # noqa: E402

PORT = 8200
URL = f"http://127.0.0.1:{PORT}"
APP = "bench"


def forecast_body(i: int, caption: bool = False) -> dict:
    return {"products": [fx.product(i % 16, caption="a red wool coat" if caption else None)]}


def design_body(i: int) -> dict:
    return {"image": IMAGES[i % len(IMAGES)], "design_id": f"d{i}", "release_date": "2021-07-01",
            "attributes": {"category": "coat", "color": "red", "fabric": "wool"}}


def basket_body(i: int) -> dict:
    rng = np.random.default_rng(i)
    return {"users": [{"user_id": i, "orders": [sorted(rng.choice(30, 4, replace=False) + 100) for _ in range(5)]}],
            "k": 10}


IMAGES = [fx.png_b64(64, seed=s) for s in range(16)]
ENDPOINTS = {"forecast": ("/v1/forecast", forecast_body), "design": ("/v1/design/score", design_body),
             "basket": ("/v1/basket/predict", basket_body)}


def _json_default(v):
    return v.item() if hasattr(v, "item") else str(v)


async def drive(requests_: list[tuple[str, str, bytes, dict]], concurrency: int) -> list[tuple[float, float, int]]:
    """Send (method, path, body, headers) requests with `concurrency` workers; (start, latency, status) each."""
    import aiohttp

    out: list[tuple[float, float, int]] = []
    queue = list(reversed(requests_))
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as s:
        async def worker():
            while queue:
                method, path, body, headers = queue.pop()
                t0 = time.perf_counter()
                try:
                    async with s.request(method, URL + path, data=body, headers=headers) as r:
                        await r.read()
                        status = r.status
                except aiohttp.ClientError:
                    status = -1  # connection-level failure
                out.append((t0, time.perf_counter() - t0, status))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def good(path: str, body: dict) -> tuple[str, str, bytes, dict]:
    return "POST", path, json.dumps(body, default=_json_default).encode(), {"Content-Type": "application/json"}


def summarise(results: list[tuple[float, float, int]], seconds: float) -> dict:
    lat = np.array([r[1] for r in results]) * 1000
    return {"requests": len(results), "req_per_s": round(len(results) / seconds, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "errors": sum(r[2] != 200 for r in results),
            "statuses": {str(k): v for k, v in sorted(Counter(r[2] for r in results).items())}}


def timed(reqs, concurrency: int) -> dict:
    with CpuWatch() as watch:
        start = time.perf_counter()
        results = asyncio.run(drive(reqs, concurrency))
        seconds = time.perf_counter() - start
    return {**summarise(results, seconds), "concurrency": concurrency, "seconds": round(seconds, 2),
            "foreign_cpu_s": round(watch.foreign + watch.steal, 1)}


def deploy(runs: dict, batching: dict | None = None) -> None:
    from ray import serve

    from raydemand.serve.app import build_app

    serve.run(build_app({"run_dirs": [str(p) for p in runs.values()], "batching": batching or {}}),
              name=APP, route_prefix="/")


def wait_ready(timeout: float = 180) -> None:
    import requests

    end = time.time() + timeout
    while time.time() < end:
        try:
            if requests.post(URL + "/v1/forecast", json=forecast_body(0), timeout=30).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError("the forecaster did not answer in time")


# ---- (c) malformed requests -----------------------------------------------------------------


def bad_requests(n: int) -> list[tuple[str, str, bytes, dict]]:
    j = {"Content-Type": "application/json"}

    def js(obj) -> bytes:
        return json.dumps(obj).encode()

    product = fx.product(0)
    kinds = [
        ("POST", "/v1/forecast", b'{"products": [', j),
        ("POST", "/v1/forecast", b"\xff\xfe garbage", j),
        ("POST", "/v1/forecast", js({"products": {"a": 1}}), j),
        ("POST", "/v1/forecast", js({"products": [{"external_code": "x"}]}), j),
        ("POST", "/v1/forecast", js({"products": [{**product, "release_date": "2021-02-30"}]}), j),
        ("POST", "/v1/forecast", js({"products": [{**product, "attributes": {"category": "coat"}}]}), j),
        ("POST", "/v1/forecast", js({"products": [{**product, "image": base64.b64encode(b"GIF89a..").decode()}]}), j),
        ("POST", "/v1/forecast", js({"products": [{**product, "image": "@@@"}]}), j),
        ("POST", "/v1/forecast", js({"products": [product] * 65}), j),
        ("POST", "/v1/forecast", b"x" * (9 * 2**20), j),
        ("POST", "/v1/forecast", js({"products": [product]}), {"Content-Type": "text/plain"}),
        ("POST", "/v1/design/score", js({"image": fx.bomb_b64(8000)}), j),
        ("POST", "/v1/design/score", js({"image": IMAGES[0], "generate": {}}), j),
        ("POST", "/v1/design/score", js({"image": IMAGES[0][: len(IMAGES[0]) // 2]}), j),
        ("POST", "/v1/basket/predict", js({"users": [{"user_id": 1, "orders": [[99999]]}]}), j),
        ("POST", "/v1/basket/predict", js({"users": [{"user_id": 1, "orders": [[101]]}], "k": -3}), j),
        ("POST", "/v1/basket/predict", js({"users": [{"user_id": 1, "orders": "[[101]]"}]}), j),
        ("POST", "/v1/basket/predict", js([1, 2, 3]), j),
        ("GET", "/v1/forecast", b"", {}),
        ("POST", "/v2/nothing", b"{}", j),
    ]
    return [kinds[i % len(kinds)] for i in range(n)]


# ---- (d) killing a replica ------------------------------------------------------------------


def kill_run(seconds: float, kill_at: float, concurrency: int = 8) -> dict:
    import ray

    async def load():
        import aiohttp

        events: list[tuple[float, float, int]] = []
        stop = time.perf_counter() + seconds
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
            async def worker(w):
                i = w
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    try:
                        async with s.post(URL + "/v1/forecast", json=forecast_body(i, caption=True)) as r:
                            await r.read()
                            status = r.status
                    except aiohttp.ClientError:
                        status = -1
                    events.append((t0, time.perf_counter(), status))
                    i += concurrency

            async def killer():
                await asyncio.sleep(kill_at)
                names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                         if "Forecaster" in a["name"] and a["name"].startswith("SERVE_REPLICA")]
                killed.append(time.perf_counter())
                ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)

            killed: list[float] = []
            await asyncio.gather(killer(), *(worker(w) for w in range(concurrency)))
        return events, killed[0]

    events, t_kill = asyncio.run(load())
    after = sorted((e for e in events if e[1] >= t_kill), key=lambda e: e[1])
    failed = [e for e in after if e[2] != 200]
    last_fail = max((e[1] for e in failed), default=t_kill)
    first_ok_after_fail = min((e[1] for e in after if e[2] == 200 and e[1] > last_fail), default=None)
    ok_ends = [t_kill] + [e[1] for e in after if e[2] == 200]
    return {"requests": len(events), "ok": sum(e[2] == 200 for e in events),
            "success_rate": round(sum(e[2] == 200 for e in events) / len(events), 4),
            "failed_statuses": sorted({e[2] for e in events if e[2] != 200}),
            "failed": len(failed),
            "recovery_s": round((first_ok_after_fail or t_kill) - t_kill, 2),
            "longest_gap_without_success_s": round(float(np.max(np.diff(ok_ends))) if len(ok_ends) > 1 else 0.0, 2),
            "max_latency_s": round(max(e[1] - e[0] for e in events), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,4,16,32", help="client concurrency levels")
    parser.add_argument("--requests", type=int, default=192, help="requests per level (at least 4 per worker)")
    parser.add_argument("--sections", default="abcd", help="which of (a)-(d) to run")
    parser.add_argument("--endpoints", default="forecast,design,basket", help="endpoints of (a)")
    parser.add_argument("--waits", default="0.01,0.05", help="batch_wait_timeout_s values of the batched runs in (b)")
    parser.add_argument("--rounds", type=int, default=2, help="batched/unbatched rounds, alternating")
    parser.add_argument("--bad", type=int, default=1000, help="malformed requests")
    parser.add_argument("--kill-seconds", type=float, default=45.0, help="length of the replica-kill load run")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.requests, args.rounds, args.bad, args.kill_seconds = "1,8", 32, 1, 60, 25.0
    levels = [int(c) for c in args.levels.split(",")]

    from ray import serve

    from raydemand.ray_utils import init_ray

    tmp = Path(tempfile.mkdtemp(prefix="serve_bench_"))
    runs = {"forecast": fx.forecast_run(tmp / "forecast"), "basket": fx.basket_run(tmp / "basket"),
            "scorer": fx.scorer_run(tmp / "scorer")}
    init_ray(num_cpus=4)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    t0 = time.perf_counter()
    deploy(runs)
    wait_ready()
    results: dict = {"deploy_s": round(time.perf_counter() - t0, 1), "cpus": os.cpu_count(), "levels": {}}
    print(f"deployed in {results['deploy_s']} s", flush=True)

    def save():
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=_json_default))

    # (a) every endpoint at rising concurrency
    for name, (path, body) in [(e, ENDPOINTS[e]) for e in args.endpoints.split(",") if "a" in args.sections]:
        asyncio.run(drive([good(path, body(i)) for i in range(16)], 4))  # warm-up
        for c in levels:
            n = max(args.requests, 4 * c) if c > 1 else max(16, args.requests // 4)
            row = timed([good(path, body(i)) for i in range(n)], c)
            results["levels"].setdefault(name, []).append(row)
            print(f"{name:8s} c={c:3d}: {row}", flush=True)
    save()

    # (b) batched vs unbatched forecaster at concurrency 32
    if "b" in args.sections:
        reqs = [good("/v1/forecast", forecast_body(i, caption=True)) for i in range(max(args.requests, 128))]
        settings = {"unbatched": {"max_batch_size": 1}}
        settings.update({f"batched wait {w}": {"max_batch_size": 32, "batch_wait_timeout_s": float(w)}
                         for w in args.waits.split(",")})
        rounds: dict[str, list[dict]] = {m: [] for m in settings}
        for r in range(args.rounds):
            for mode, batching in settings.items():
                deploy(runs, {"Forecaster": batching})
                wait_ready()
                asyncio.run(drive(reqs[:64], 32))  # warm-up at this setting
                row = timed(reqs, 32)
                rounds[mode].append(row)
                print(f"forecaster {mode:18s} round {r + 1}: {row}", flush=True)
        best = {m: max(rows, key=lambda x: x["req_per_s"]) for m, rows in rounds.items()}
        ratios = {m: round(best[m]["req_per_s"] / best["unbatched"]["req_per_s"], 2) for m in best if m != "unbatched"}
        results["batching"] = {"rounds": rounds, "ratio_best_vs_unbatched": ratios}
        print(f"batched/unbatched throughput at concurrency 32 (best rounds): {ratios}", flush=True)
        save()
        deploy(runs)
        wait_ready()

    # (c) malformed requests
    if "c" in args.sections:
        probe = [good("/v1/forecast", forecast_body(i)) for i in range(40)]
        before = timed(probe, 1)
        bad = timed(bad_requests(args.bad), 16)
        after = timed(probe, 1)
        server_errors = sum(v for k, v in bad["statuses"].items() if int(k) >= 500)
        dropped = bad["statuses"].get("-1", 0)  # connection closed before a response (none expected)
        results["malformed"] = {"bad": bad, "server_errors": server_errors, "connection_errors": dropped,
                                "good_before": before, "good_after": after}
        print(f"malformed: {bad}; responses >= 500: {server_errors}; no response: {dropped}; good p50 "
              f"before/after: {before['p50_ms']}/{after['p50_ms']} ms", flush=True)
        save()

    # (d) kill the Forecaster's replica during a load run
    if "d" in args.sections:
        results["kill"] = kill_run(args.kill_seconds, kill_at=5.0)
        print(f"replica kill: {results['kill']}", flush=True)
    save()
    serve.shutdown()


if __name__ == "__main__":
    main()
