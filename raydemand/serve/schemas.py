"""Request and response bodies of the HTTP API (pydantic), and the error a field check raises.

FastAPI checks types, required fields and static bounds from these models; limits that come from
the application's config (`LimitsConfig`) and checks that need a model (attributes a forecast run
compares, a basket run's catalogue) raise `FieldError`, which answers 422 in the same shape.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Text = Annotated[str, StringConstraints(max_length=1000)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
ProductId = Annotated[int, Field(ge=0)] | Id
Base64Image = Annotated[str, Field(description="a PNG, JPEG or WebP image, base64-encoded (standard alphabet)")]
Attribute = Annotated[str, StringConstraints(max_length=200)] | float | int


class FieldError(ValueError):
    """Bad input in one field: `loc` is its path in the request body, e.g. ('products', 0, 'image')."""

    def __init__(self, loc: tuple, msg: str, status: int = 422):
        self.loc, self.msg, self.status = tuple(loc), msg, status
        super().__init__(f"{where(self.loc)}: {msg}")

    def __reduce__(self):
        return type(self), (self.loc, self.msg, self.status)


def where(loc: tuple) -> str:
    """('body', 'products', 0, 'image') -> 'body.products[0].image'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- forecast ---------------------------------------------------------------------------------


class Product(Strict):
    external_code: Id = Field(description="product id, echoed in the response")
    release_date: dt.date = Field(description="ISO date; only products sold out 12 weeks before it are neighbours")
    attributes: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Attribute] = Field(
        default_factory=dict, max_length=64,
        description="category, color, fabric, ... : every attribute the forecast run compares is required")
    caption: Text | None = Field(None, description="image caption; empty or absent: the Captioner makes one")
    image: Base64Image | None = Field(None, description="the product image; absent: forecast without an image")


class ForecastRequest(Strict):
    products: list[Product] = Field(min_length=1, description="at most `limits.max_products`")


class Neighbour(BaseModel):
    external_code: str
    weight: float


class Attention(BaseModel):
    image_text: list[float] = Field(default_factory=list,
                                    description="the caption's cross-attention over the image tokens")
    neighbours: list[Neighbour] = Field(default_factory=list,
                                        description="additive attention over the retrieved past products")


class Forecast(BaseModel):
    external_code: str
    weeks: list[float] = Field(description="12 weekly forecasts in the training table's sales scale")
    caption: str
    caption_source: str = Field(description="'request' or the captioner that made it")
    attention: Attention | dict[str, Any] = Field(description="empty for forecasters without attention")


class ForecastResponse(BaseModel):
    model_version: str
    forecasts: list[Forecast]


# ---- design -----------------------------------------------------------------------------------


class Generate(Strict):
    category: Id | None = Field(None, description="a category of the GAN run; absent: its first")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class DesignRequest(Strict):
    image: Base64Image | None = Field(None, description="the design to score (exactly one of image, generate)")
    generate: Generate | None = Field(None, description="let the GAN run draw the design instead")
    design_id: Id = "design"
    release_date: dt.date | None = Field(None, description="given: the design's 12-week forecast is added")
    attributes: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Attribute] = Field(
        default_factory=dict, max_length=64)
    caption: Text | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.image is None) == (self.generate is None):
            raise ValueError("give exactly one of 'image' and 'generate'")
        return self


class DesignResponse(BaseModel):
    model_version: str
    design_id: str
    preference: dict[str, float] = Field(description="per category, % (softmax of the preference scorer)")
    top_category: str
    forecast: Forecast | None = None
    forecast_model_version: str | None = None
    generator_version: str | None = None
    image: str | None = Field(None, description="the generated design, base64 PNG (generate requests only)")


# ---- basket -----------------------------------------------------------------------------------


class BasketUser(Strict):
    user_id: ProductId
    orders: list[list[ProductId]] = Field(min_length=1, description="past orders, oldest first; product ids")


class BasketRequest(Strict):
    users: list[BasketUser] = Field(min_length=1)
    k: int = Field(10, ge=1, description="recommendations per user (at most `limits.max_k`)")
    unknown_products: str = Field("error", pattern="^(error|ignore)$",
                                  description="'error': 422 naming the product; 'ignore': skip it")


class Recommendation(BaseModel):
    rank: int
    product_id: int | str
    score: float
    in_basket: bool = Field(description="score >= the run's threshold (chosen on validation users)")


class UserPrediction(BaseModel):
    user_id: int | str
    items: list[Recommendation]


class BasketResponse(BaseModel):
    model_version: str
    threshold: float
    predictions: list[UserPrediction]


class Health(BaseModel):
    status: str
    models: dict[str, str] = Field(description="loaded families and their model versions")
