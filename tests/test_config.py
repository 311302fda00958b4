from typing import Literal

import pytest
from pydantic import Field

from raydemand.config import Config, ConfigError, load_config, parse_overrides


class Optim(Config):
    lr: float = 1e-3  # learning rate
    betas: list[float] = Field(default_factory=lambda: [0.5, 0.999])


class Stage(Config):
    seed: int = 0  # random seed
    model: Literal["cnngru", "attngru"] = "cnngru"
    optim: Optim = Field(default_factory=Optim)


def test_defaults_then_yaml_then_overrides_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\noptim:\n  lr: 0.01\n")
    assert load_config(Stage).seed == 0
    assert load_config(Stage, path).optim.lr == 0.01
    cfg = load_config(Stage, path, ["optim.lr=2e-4", "model=attngru"], seed=7)
    assert (cfg.seed, cfg.model, cfg.optim.lr, cfg.optim.betas) == (7, "attngru", 2e-4, [0.5, 0.999])
    # None means "flag not given" and keeps the lower layer.
    assert load_config(Stage, path, seed=None).seed == 3


def test_unknown_key_is_an_error_naming_the_key_and_source(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sede: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key 'sede' \(known keys: seed, model, optim\)"):
        load_config(Stage, path)
    with pytest.raises(ConfigError, match="unknown key 'optim.momentum'"):
        load_config(Stage, overrides=["optim.momentum=0.9"])


def test_wrong_type_names_the_field():
    with pytest.raises(ConfigError, match=r"field 'seed': .*integer.*'abc'"):
        load_config(Stage, overrides=["seed=abc"])
    with pytest.raises(ConfigError, match="field 'model'"):
        load_config(Stage, overrides=["model=transformer"])


def test_overrides_parse_yaml_scalars():
    assert parse_overrides(["a=1e-3", "b=true", "c=[5, 10]", "d.e=null", "f=text"]) == {
        "a": 1e-3, "b": True, "c": [5, 10], "d": {"e": None}, "f": "text"}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["novalue"])


def test_bad_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Stage, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(Stage, tmp_path / "list.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(Stage, overrides=["optim.lr=0.5", "seed=9"])
    cfg.save(tmp_path / "resolved.yaml")
    assert load_config(Stage, tmp_path / "resolved.yaml") == cfg


def test_with_overrides_copies_and_validates():
    from raydemand.config import ConfigError, with_overrides

    class Inner(Config):
        lr: float = 0.1

    class Outer(Config):
        inner: Inner = Inner()
        name: str = "a"

    base = Outer()
    changed = with_overrides(base, ["inner.lr=1e-3", "name=b"])
    assert changed.inner.lr == 0.001 and changed.name == "b" and base.inner.lr == 0.1
    with pytest.raises(ConfigError, match="inner.lr"):
        with_overrides(base, ["inner.lr=fast"])


def test_model_names_are_checked_against_the_registries():
    """Family configs read model names from the registries, so the error lists what is registered."""
    from raydemand.basket.base import list_predictors
    from raydemand.basket.config import BasketConfig
    from raydemand.design.config import GANTrainConfig
    from raydemand.design.models import list_gans

    assert load_config(BasketConfig, model="topfreq").model == "topfreq"
    with pytest.raises(ConfigError, match=f"field 'model'.*unknown basket model 'gru'; registered: "
                                          f"{', '.join(list_predictors())}"):
        load_config(BasketConfig, model="gru")
    with pytest.raises(ConfigError, match=f"field 'model.gan'.*registered: {', '.join(list_gans())}"):
        load_config(GANTrainConfig, None, ["model.gan=stylegan"])
