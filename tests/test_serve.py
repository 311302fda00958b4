"""The Serve application on the shared local Ray cluster, over real HTTP: every endpoint with good
input, each kind of bad input (4xx naming the field, never 5xx), auth, 503 for a missing family."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import requests

import serve_fixtures as fx

ROOT = Path(__file__).resolve().parents[1]
PORT = 8123
URL = f"http://127.0.0.1:{PORT}"
TOKEN = "test-token-123"
TOKEN_ENV = "RAYDEMAND_TEST_SERVE_TOKEN"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def served(ray_session, tmp_path_factory):
    """Two applications: 'full' (every family, bearer token on, small body limit) and 'empty'
    (no run directory, no token) under /empty."""
    from ray import serve

    from raydemand.serve.app import build_app, read_serve_config, start
    from raydemand.serve.config import AppConfig

    root = tmp_path_factory.mktemp("serve_runs")
    runs = {"forecast": fx.forecast_run(root / "forecast"), "basket": fx.basket_run(root / "basket"),
            "scorer": fx.scorer_run(root / "scorer"), "gan": fx.gan_run(root / "gan")}
    limits = {"max_body_bytes": BODY_LIMIT, "max_image_pixels": 1024 * 1024}
    os.environ[TOKEN_ENV] = TOKEN
    try:
        # the basket run as a storage URI: its replica copies it before loading
        run_dirs = [str(runs["forecast"]), runs["basket"].as_uri(), str(runs["scorer"]), str(runs["gan"])]
        # per-deployment options (autoscaling, batching, resources) from the shipped Serve config file
        _, deployments, _ = read_serve_config(str(ROOT / "deploy" / "serve.yaml"))
        for name in ("Forecaster", "Captioner", "DesignScorer", "BasketRecommender"):
            # small CPU shares: Ray Data stages (the batch-predict comparison) need CPUs of the test cluster
            deployments[name]["ray_actor_options"] = {"num_cpus": 0.25}
        start(AppConfig(run_dirs=run_dirs, limits=limits, token_env=TOKEN_ENV), port=PORT, name="full",
              deployments=deployments)
    finally:
        del os.environ[TOKEN_ENV]
    serve.run(build_app({"token_env": TOKEN_ENV}), name="empty", route_prefix="/empty")
    yield runs
    serve.shutdown()


def post(path, body, headers=AUTH, **kw):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(URL + path, data=data, headers={"Content-Type": "application/json", **headers},
                         timeout=60, **kw)


def test_healthz_docs_and_auth(served):
    r = requests.get(URL + "/healthz", timeout=30)  # no token needed
    assert r.status_code == 200
    models = r.json()["models"]
    assert set(models) == {"forecast", "basket", "scorer", "gan"}
    assert models["forecast"].startswith("forecast@")
    assert requests.get(URL + "/docs", headers=AUTH, timeout=30).status_code == 200
    spec = requests.get(URL + "/openapi.json", headers=AUTH, timeout=30).json()
    assert {"/healthz", "/v1/forecast", "/v1/design/score", "/v1/basket/predict"} <= set(spec["paths"])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = post("/v1/forecast", {"products": [fx.product(0)]}, headers=headers)
        assert r.status_code == 401 and "bearer token" in r.json()["detail"]
    assert requests.get(URL + "/docs", timeout=30).status_code == 401
    # the app without a token answers without one
    assert requests.get(URL + "/empty/healthz", timeout=30).json()["models"] == {}
    assert requests.get(URL + "/empty/docs", timeout=30).status_code == 200


def test_forecast(served):
    body = {"products": [fx.product(0), fx.product(1, image=False, caption="a red wool dress")]}
    r = post("/v1/forecast", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_version"] == requests.get(URL + "/healthz", timeout=30).json()["models"]["forecast"]
    first, second = out["forecasts"]
    assert [f["external_code"] for f in out["forecasts"]] == ["new0", "new1"]
    assert len(first["weeks"]) == 12 and min(first["weeks"]) >= 0
    assert first["caption_source"] == "attributes" and first["caption"] == "a black cotton coat"
    assert second["caption_source"] == "request" and second["caption"] == "a red wool dress"
    weights = [n["weight"] for n in first["attention"]["neighbours"]]
    assert len(weights) == 10 and abs(sum(weights) - 1) < 1e-4
    assert len(first["attention"]["image_text"]) >= 1
    # the same product again: the same forecast (no state leaks between batches)
    again = post("/v1/forecast", {"products": [fx.product(0)]}).json()["forecasts"][0]
    assert again["weeks"] == pytest.approx(first["weeks"], rel=1e-5)


def test_served_forecast_matches_batch_predict(served, tmp_path):
    """The Forecaster answers through `ForecastRun.predict` (the CLI's `forecast predict`): with its
    in-process embeddings it gives what the Ray Data captioning and embedding stages give for the
    same product, so HTTP and CLI forecasts are the same."""
    import pandas as pd

    from raydemand.forecast.run import load_run

    body = fx.product(3, caption="a white denim coat")  # captioned: one Ray Data stage fewer to wait for
    (tmp_path / "p.png").write_bytes(base64.b64decode(body["image"]))
    df = pd.DataFrame([{"external_code": body["external_code"], "release_date": body["release_date"],
                        **body["attributes"], "caption": body["caption"], "image_path": str(tmp_path / "p.png")}])
    table, attention = load_run(served["forecast"]).predict(df, return_attention=True)
    served_out = post("/v1/forecast", {"products": [body]}).json()["forecasts"][0]
    assert served_out["weeks"] == pytest.approx(table[[str(i) for i in range(12)]].to_numpy()[0].tolist(), rel=1e-4)
    assert [n["external_code"] for n in served_out["attention"]["neighbours"]] == \
        [n["external_code"] for n in attention[0]["neighbours"]]


def test_design_score_composes_the_forecaster(served):
    body = {"image": fx.png_b64(64, seed=3), "design_id": "d1", "release_date": "2021-07-01",
            "attributes": {"category": "coat", "color": "red", "fabric": "wool"}}
    r = post("/v1/design/score", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out["preference"]) == set(fx.CATEGORIES)
    assert sum(out["preference"].values()) == pytest.approx(100, abs=1e-3)
    assert out["top_category"] == max(out["preference"], key=out["preference"].get)
    assert out["forecast"]["external_code"] == "d1" and len(out["forecast"]["weeks"]) == 12
    assert out["forecast_model_version"].startswith("forecast@")
    r = post("/v1/design/score", {"generate": {"category": "dress", "seed": 1}})
    assert r.status_code == 200, r.text
    assert "forecast" not in r.json()
    assert base64.b64decode(r.json()["image"]).startswith(b"\x89PNG")


def test_basket(served):
    body = {"users": [{"user_id": 1, "orders": [[101, 102], [102, 110]]}, {"user_id": "u2", "orders": [[100]]}],
            "k": 3}
    r = post("/v1/basket/predict", body)
    assert r.status_code == 200, r.text
    first, second = r.json()["predictions"]
    assert first["user_id"] == 1 and [i["product_id"] for i in first["items"]][0] == 102  # bought twice
    assert [i["rank"] for i in first["items"]] == [1, 2, 3]
    assert second["user_id"] == "u2" and len(second["items"]) == 3
    ignored = post("/v1/basket/predict", {"users": [{"user_id": 5, "orders": [[999, 101]]}], "k": 2,
                                          "unknown_products": "ignore"})
    assert ignored.status_code == 200 and ignored.json()["predictions"][0]["items"][0]["product_id"] == 101


def test_served_design_score_is_the_score_api(served):
    """/v1/design/score answers `design.score.score_images` on the design's pixels, and a generated
    design is `GANRun.generate`'s (what `design generate` writes) for the same category and seed."""
    import io

    import numpy as np
    from PIL import Image

    from raydemand.design.generate import GANRun
    from raydemand.design.score import score_images
    from raydemand.design.scorer import ScorerRun

    scorer = ScorerRun(served["scorer"])
    image = fx.png_b64(scorer.size, seed=5)  # at the scorer's size: no resize on either side
    pixels = np.array(Image.open(io.BytesIO(base64.b64decode(image))).convert("RGB"))
    (api,) = score_images(scorer, pixels[None])
    out = post("/v1/design/score", {"image": image}).json()
    assert out["top_category"] == api["top_category"]
    assert out["preference"] == pytest.approx(api["preference"], rel=1e-4, abs=1e-4)

    out = post("/v1/design/score", {"generate": {"category": "dress", "seed": 7}}).json()
    drawn = np.array(Image.open(io.BytesIO(base64.b64decode(out["image"]))))
    images, labels = GANRun(served["gan"]).generate(1, "dress", seed=7)
    assert drawn.shape == images[0].shape and labels.tolist() == [fx.CATEGORIES.index("dress")]
    assert np.abs(drawn.astype(int) - images[0]).max() <= 1  # float rounding across processes at most
    (api,) = score_images(scorer, drawn[None])
    assert out["preference"] == pytest.approx(api["preference"], rel=1e-4, abs=1e-4)


def test_served_basket_is_the_cli_prediction(served, tmp_path):
    """/v1/basket/predict answers what `basket predict` (the CLI, through the Ray Data windows stage)
    writes for the same orders: known products, an unknown one skipped, a user with only unknown
    products on the popularity ranking."""
    import pandas as pd

    from raydemand.basket.predict import predict

    histories = [[[101, 102], [102, 110]], [[103, 999], [100]], [[998]], [[105], [106], [105, 107]]]
    rows = [(u, 10 * u + o, o + 1, p) for u, orders in enumerate(histories) for o, order in enumerate(orders)
            for p in order]
    pd.DataFrame(rows, columns=["user_id", "order_id", "order_number", "product_id"]).to_csv(
        tmp_path / "orders.csv", index=False)
    summary = predict(served["basket"], tmp_path / "orders.csv", 4, tmp_path / "pred.csv")
    assert summary["fallback_users"] == 1 and summary["unknown_lines"] == 2
    cli = pd.read_csv(tmp_path / "pred.csv")
    body = {"users": [{"user_id": f"u{u}", "orders": orders} for u, orders in enumerate(histories)], "k": 4,
            "unknown_products": "ignore"}
    r = post("/v1/basket/predict", body)
    assert r.status_code == 200, r.text
    for u, answer in enumerate(r.json()["predictions"]):
        mine = cli[cli.user_id == u]
        assert answer["user_id"] == f"u{u}"
        assert [i["product_id"] for i in answer["items"]] == mine["product_id"].tolist()
        assert [i["rank"] for i in answer["items"]] == mine["rank"].tolist()
        assert [i["in_basket"] for i in answer["items"]] == mine["in_basket"].tolist()
        assert [i["score"] for i in answer["items"]] == pytest.approx(mine["score"].tolist(), rel=1e-6)


BAD = [  # (path, body, status, text the message must name)
    ("/v1/forecast", {"products": {"external_code": "x"}}, 422, "body.products"),
    ("/v1/forecast", {"products": [{"external_code": "x", "attributes": {}}]}, 422, "products[0].release_date"),
    ("/v1/forecast", {"products": [{**fx.product(0), "release_date": "2021-13-01"}]}, 422, "products[0].release_date"),
    ("/v1/forecast", {"products": [{**fx.product(0), "attributes": {"category": "coat", "fabric": "wool"}}]}, 422,
     "products[0].attributes.color"),
    ("/v1/forecast", {"products": [fx.product(0), {**fx.product(1), "image": base64.b64encode(b"hello").decode()}]},
     422, "products[1].image"),
    ("/v1/forecast", {"products": [{**fx.product(0), "image": "not base64!"}]}, 422, "products[0].image"),
    ("/v1/forecast", {"products": [{**fx.product(0), "colour": "red"}]}, 422, "products[0].colour"),
    ("/v1/forecast", {"products": []}, 422, "body.products"),
    ("/v1/forecast", '{"products": [', 422, "body"),
    ("/v1/design/score", {"image": fx.bomb_b64()}, 422, "body.image"),
    ("/v1/design/score", {"image": fx.png_b64(), "generate": {"seed": 1}}, 422, "exactly one of"),
    ("/v1/design/score", {"generate": {"category": "hat"}}, 422, "generate.category"),
    ("/v1/design/score", {"image": fx.png_b64(), "release_date": "2021-01-01", "attributes": {"category": "coat"}},
     422, "attributes.color"),
    ("/v1/basket/predict", {"users": [{"user_id": 1, "orders": [[101], [555, 102]]}]}, 422, "users[0].orders[1][0]"),
    ("/v1/basket/predict", {"users": [{"user_id": 1, "orders": [[101]]}], "k": 0}, 422, "body.k"),
    ("/v1/basket/predict", {"users": [{"user_id": 1, "orders": [[]]}]}, 422, "users[0].orders[0]"),
    ("/v1/basket/predict", {"users": [{"user_id": 1, "orders": [[101, 101]]}]}, 422, "users[0].orders[0][1]"),
    ("/v1/basket/predict", {"users": [{"orders": [[101]]}]}, 422, "users[0].user_id"),
]


def test_bad_input_names_the_field_and_the_app_keeps_serving(served):
    for path, body, status, text in BAD:
        r = post(path, body)
        assert r.status_code == status, (path, body if len(str(body)) < 300 else "...", r.text)
        assert text in r.json()["detail"], (text, r.json()["detail"])
    big = {"products": [{**fx.product(0), "caption": "x" * 900}] * 400}  # over the 256 KiB body limit
    r = post("/v1/forecast", big)
    assert r.status_code == 413 and "request body" in r.json()["detail"]
    chunks = (b"x" * 65536 for _ in range(6))  # chunked: no Content-Length to reject it by
    r = requests.post(URL + "/v1/forecast", data=chunks, headers=AUTH, timeout=60)
    assert r.status_code == 413
    assert post("/v1/forecast", {"products": [fx.product(2)]}).status_code == 200
    assert post("/v1/basket/predict", {"users": [{"user_id": 1, "orders": [[101]]}]}).status_code == 200


def test_missing_family_is_503_after_validation(served):
    base = URL + "/empty"
    r = requests.post(base + "/v1/forecast", json={"products": [{"external_code": "x"}]}, timeout=30)
    assert r.status_code == 422  # validated first
    r = requests.post(base + "/v1/forecast", json={"products": [fx.product(0)]}, timeout=30)
    assert r.status_code == 503 and "forecast run directory" in r.json()["detail"]
    r = requests.post(base + "/v1/design/score", json={"image": fx.png_b64()}, timeout=30)
    assert r.status_code == 503 and "scorer run directory" in r.json()["detail"]
    r = requests.post(base + "/v1/design/score", json={"image": "%%%"}, timeout=30)
    assert r.status_code == 422 and "body.image" in r.json()["detail"]
    r = requests.post(base + "/v1/basket/predict", json={"users": [{"user_id": 1, "orders": [[101]]}]}, timeout=30)
    assert r.status_code == 503 and "basket run directory" in r.json()["detail"]
