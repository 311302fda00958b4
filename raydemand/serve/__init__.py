"""Ray Serve: one HTTP API over the forecast, design-scoring and basket families.

A FastAPI ingress composes model deployments through handles: `Forecaster` (which calls the
`Captioner` for products without a caption), `DesignScorer` (which calls the `Forecaster` to
forecast the design it scores) and `BasketRecommender`. `build_app(args)` is the application
builder that `raydemand serve`, `serve run` and `serve deploy` (deploy/serve.yaml) all use.
"""
