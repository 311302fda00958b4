"""Basket model code as plain PyTorch: every registered model, blocks, masking, autoencoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from raydemand.basket.autoencoder import ProductAutoencoder, product_profiles, read_vectors, write_vectors
from raydemand.basket.config import AutoencoderConfig, NetConfig
from raydemand.basket.data import CONTEXT_DIM, Vocab
from raydemand.basket.features import FEATURES
from raydemand.basket.models import MODELS, OrderEncoderCNN, OrderSequenceGRU, create_model

P = 30


def batch(b=4, n=5, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    orders = torch.randint(1, P + 1, (b, n, length), generator=g)
    orders[:, :, 4:] = 0  # padding at the end of every order
    orders[0, :3] = 0  # user 0 has only 2 orders: empty leading slots
    mask = (orders > 0).any(-1)
    feats = torch.rand(b, P, len(FEATURES), generator=g)
    return orders, mask, feats, torch.rand(b, CONTEXT_DIM, generator=g)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, P, NetConfig(embed_dim=8, order_hidden=16, attn_heads=2))
    logits = model(*batch())
    assert logits.shape == (4, P)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.embed.weight.grad[0].abs().sum() == 0  # padding index gets no gradient


@pytest.mark.parametrize("name", sorted(MODELS))
def test_padding_and_empty_slots_do_not_change_the_output(name):
    torch.manual_seed(0)
    model = create_model(name, P, NetConfig(embed_dim=8, order_hidden=16, attn_heads=2, dropout=0.0)).eval()
    orders, mask, feats, ctx = batch()
    wider = torch.cat([orders, torch.zeros_like(orders[..., :3])], dim=-1)  # more padding per order
    with torch.no_grad():
        a = model(orders, mask, feats, ctx)
        b = model(wider, mask, feats, ctx)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_history_changes_the_prediction(name):
    """A model that ignored the orders would pass every shape test; this one would not."""
    torch.manual_seed(0)
    model = create_model(name, P, NetConfig(embed_dim=8, order_hidden=16, attn_heads=2, dropout=0.0,
                                            user_features=False)).eval()
    orders, mask, feats, ctx = batch()
    other = orders.clone()
    other[1, -1, :4] = torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        a, b = model(orders, mask, feats, ctx), model(other, mask, feats, ctx)
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])


def test_cnn_encoder_max_pools_real_products_only():
    enc = OrderEncoderCNN(dim=3, hidden=4, kernel_size=1, dropout=0.0)
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    out = enc(x, mask)
    expected = torch.relu(enc.conv(x[:1, :2].transpose(1, 2))).amax(-1)
    torch.testing.assert_close(out[:1], expected)
    assert torch.equal(out[1], torch.zeros(4))  # an empty order is a zero vector


def test_sequence_gru_reads_real_orders_oldest_first():
    gru = OrderSequenceGRU(hidden=4, n_layers=1, dropout=0.0)
    seq = torch.randn(1, 3, 4)
    left_padded = torch.cat([torch.zeros(1, 2, 4), seq], dim=1)  # (1, 5, 4): two empty slots first
    mask = torch.tensor([[False, False, True, True, True]])
    _, h = gru.gru(seq)
    torch.testing.assert_close(gru(left_padded, mask), h[-1])


def test_loaded_vectors_frozen_or_finetuned():
    vectors = np.random.default_rng(0).normal(size=(P, 8)).astype(np.float32)
    frozen = create_model("cnngru", P, NetConfig(embed_dim=8, order_hidden=16, freeze_embeddings=True), vectors)
    np.testing.assert_allclose(frozen.embed.weight[1:].detach().numpy(), vectors)
    assert not frozen.embed.weight.requires_grad
    tuned = create_model("cnngru", P, NetConfig(embed_dim=8, order_hidden=16), vectors)
    assert tuned.embed.weight.requires_grad
    with pytest.raises(ValueError, match="shape"):
        create_model("cnngru", P, NetConfig(embed_dim=16), vectors)


def test_autoencoder_profiles_and_vector_file(tmp_path):
    lines = pd.DataFrame({"order_id": [1, 1, 2, 2, 3], "product_id": [10, 20, 10, 30, 20],
                          "aisle": ["a", "a", "a", "b", "a"]})
    vocab = Vocab(np.array([10, 20, 30]), np.array([0.6, 0.6, 0.3]))
    prof = product_profiles(lines, vocab, AutoencoderConfig(context_products=2, attributes=["aisle"]))
    # P(c | p) for c in the two most popular (10, 20), then one-hot aisle a/b
    np.testing.assert_allclose(prof, [[0, 0.5, 1, 0], [0.5, 0, 1, 0], [1, 0, 0, 1]])
    cfg = AutoencoderConfig(dim=4, hidden=8)
    z, recon = ProductAutoencoder(prof.shape[1], cfg)(torch.as_tensor(prof))
    assert z.shape == (3, 4) and recon.shape == prof.shape
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_vectors(tmp_path / "emb.parquet", vocab, vectors)
    got, found = read_vectors(tmp_path / "emb.parquet", Vocab(np.array([30, 10, 99]), np.ones(3)), 4)
    assert found == 2
    np.testing.assert_array_equal(got[:2], vectors[[2, 0]])
