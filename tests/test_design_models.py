"""Every registered GAN as plain PyTorch: shapes, gradients, finiteness, training steps, rebuild from args."""

from __future__ import annotations

import math

import pytest
import torch

from raydemand.design.config import GANTrainConfig
from raydemand.design.layers import EqualizedConv2d, MinibatchStdDev, PixelNorm, ProjectionHead
from raydemand.design.models import create_gan, gan_from_args, list_gans
from raydemand.design.train import gan_step, learning_rate, paired_labels
from raydemand.errors import InputError

GANS = list_gans()


def test_registry_has_the_three_gans():
    assert GANS == ["d2gan", "dcgan", "pggan"]
    with pytest.raises(InputError, match="unknown GAN 'stylegan'"):
        create_gan("stylegan", 10, 1)


@pytest.mark.parametrize("name", GANS)
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_backward_shapes(name, channels):
    torch.manual_seed(0)
    gan = create_gan(name, n_classes=4, channels=channels, size=16, width=8, max_width=32)
    z, y = torch.randn(6, 100), torch.tensor([0, 1, 2, 3, 0, 1])
    fake = gan.G(z, y)
    assert fake.shape == (6, channels, 16, 16)
    logits = gan.D(fake, y)
    assert logits.shape == (6, gan.heads)
    real = gan.prepare_real(torch.rand(6, channels, 16, 16) * 2 - 1)
    loss = gan.d_loss(gan.D(real, y), logits) + gan.g_loss(logits)
    loss.backward()
    for module in (gan.G, gan.D):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(loss)
    out = gan.generate(z, y)
    assert out.shape == (6, channels, 16, 16) and out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("name", GANS)
def test_full_size_64_and_rebuild_from_args(name):
    gan = create_gan(name, n_classes=10, channels=1)  # the seed's 64x64 and noise 100
    assert gan.generate(torch.randn(2, 100), torch.tensor([3, 7])).shape == (2, 1, 64, 64)
    again = gan_from_args(gan.args())
    again.G.load_state_dict(gan.G.state_dict())  # strict: same architecture
    assert again.args() == gan.args()


@pytest.mark.parametrize("name", GANS)
def test_training_steps_change_both_players_and_stay_finite(name):
    torch.manual_seed(0)
    gan = create_gan(name, n_classes=2, channels=1, size=16, width=8, max_width=16)
    opt_g = torch.optim.Adam(gan.G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(gan.D.parameters(), 2e-4, betas=(0.5, 0.999))
    g0 = [p.detach().clone() for p in gan.G.parameters()]
    d0 = [p.detach().clone() for p in gan.D.parameters()]
    real, y = torch.rand(8, 1, 16, 16) * 2 - 1, torch.tensor([0, 1] * 4)
    for step in range(3):
        gan.set_progress(step / 3)
        loss_d, loss_g, sep = gan_step(gan, gan.G, gan.D, opt_g, opt_d, real, y)
        assert math.isfinite(loss_d) and math.isfinite(loss_g) and 0 <= sep <= 1
    assert any(not torch.equal(a, b) for a, b in zip(g0, gan.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, gan.D.parameters()))


def test_conditioning_changes_the_image_and_unconditional_ignores_labels():
    torch.manual_seed(0)
    gan = create_gan("dcgan", n_classes=3, channels=1, size=16, width=8).eval()
    z = torch.randn(1, 100).repeat(2, 1)
    a, b = gan.G(z, torch.tensor([0, 2]))
    assert not torch.allclose(a, b)
    plain = create_gan("dcgan", n_classes=3, channels=1, size=16, width=8, conditional=False).eval()
    a, b = plain.G(z, torch.tensor([0, 2]))
    assert torch.allclose(a, b)


def test_pggan_grows_4_to_64_with_fade_in():
    gan = create_gan("pggan", n_classes=2, channels=3, width=4, max_width=16)
    z, y = torch.randn(4, 100), torch.tensor([0, 1, 0, 1])
    seen = []
    for fraction in [0.0, 0.1, 0.2, 0.3, 0.45, 0.7, 0.9, 1.0]:
        gan.set_progress(fraction)
        x = gan.G(z, y)
        real = gan.prepare_real(torch.rand(4, 3, 64, 64))
        assert x.shape[-1] == real.shape[-1] == gan.resolution
        assert gan.D(x, y).shape == (4, 1)
        seen.append((gan.resolution, round(float(gan.G.alpha), 2)))
    assert seen[0] == (4, 1.0) and seen[-1] == (64, 1.0)
    assert (8, 0.0) in seen and any(r == 16 and 0 < a < 1 for r, a in seen)  # a stage starts fading in
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)
    gan.set_progress(0.3)  # generate() always returns full-size images
    assert gan.generate(z, y).shape == (4, 3, 64, 64)


def test_only_a_fully_faded_in_pggan_can_be_chosen():
    gan = create_gan("pggan", n_classes=2, channels=1, width=4, max_width=16)
    grown = {}
    for fraction in [0.5, 0.79, 0.8, 0.85, 0.9, 1.0]:  # the last stage (64x64) starts at 0.8, fades in until 0.9
        gan.set_progress(fraction)
        grown[fraction] = gan.full_grown()
    assert grown == {0.5: False, 0.79: False, 0.8: False, 0.85: False, 0.9: True, 1.0: True}
    dcgan = create_gan("dcgan", n_classes=2, channels=1, width=4)
    assert dcgan.full_grown() and dcgan.resolution == 64


def test_mode_seeking_defaults_and_loss():
    assert create_gan("dcgan", 2, 1).cfg.mode_seeking == 1.0 and create_gan("d2gan", 2, 1).cfg.mode_seeking == 0.02
    assert create_gan("pggan", 2, 1, width=4).cfg.mode_seeking == 0.0
    assert create_gan("dcgan", 2, 1, mode_seeking=0.0).cfg.mode_seeking == 0.0
    gan = create_gan("dcgan", 2, 1, size=16, width=8)
    z = torch.randn(4, 100)
    same = torch.zeros(4, 1, 16, 16)
    spread = torch.cat([torch.zeros(2, 1, 16, 16), torch.ones(2, 1, 16, 16)])  # pairs (0, 2), (1, 3) differ
    assert gan.mode_seeking_loss(spread, z) < 2 < 1e4 < gan.mode_seeking_loss(same, z)


def test_paired_labels_share_a_category_and_follow_the_batch():
    torch.manual_seed(0)
    y = torch.tensor([0] * 64 + [1] * 64)  # a batch of a source stored category by category
    paired = paired_labels(y)
    assert paired.shape == (128,) and torch.equal(paired[:64], paired[64:])
    assert 20 < int((paired[:64] == 0).sum()) < 44  # both categories, about as often as in the batch
    assert paired_labels(torch.tensor([3, 5, 7])).shape == (2,)


def _within_category_spread(gan, z, y):
    x = gan.G(z, y).detach()
    h = len(y) // 2
    return float((x[:h] - x[h:]).abs().mean())


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_mode_seeking_term_spreads_one_category_apart(weight):
    """The same steps on the same batch, with and without the term: with it, G's images of one
    category move apart (the cure for the one-image-per-category collapse seen on Fashion-MNIST)."""
    torch.manual_seed(0)
    gan = create_gan("dcgan", n_classes=2, channels=1, size=16, width=8, mode_seeking=weight)
    opt_g = torch.optim.Adam(gan.G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(gan.D.parameters(), 2e-4, betas=(0.5, 0.999))
    real, y = torch.rand(16, 1, 16, 16) * 2 - 1, torch.tensor([0, 1] * 8)
    gen = torch.Generator().manual_seed(1)
    z_probe, y_probe = torch.randn(16, 100, generator=gen), torch.tensor([0] * 16)
    before = _within_category_spread(gan, z_probe, y_probe)
    for _ in range(20):
        gan_step(gan, gan.G, gan.D, opt_g, opt_d, real, y)
    gain = _within_category_spread(gan, z_probe, y_probe) / before
    if weight:
        assert gain > 1.3  # measured 1.50
    else:
        assert gain < 1.05  # measured 0.94: the adversarial loss alone pulls them together


def test_pggan_output_stays_in_the_pixel_range_and_old_files_keep_a_linear_one():
    """The linear output of the paper overshot [-1, 1] on white-background colour images (99% of red
    pixels above 1 after 20 epochs on the VISUELLE layout) and D told fakes by that alone."""
    torch.manual_seed(0)
    gan = create_gan("pggan", n_classes=2, channels=3, size=16, width=8, max_width=16)
    assert gan.cfg.pggan_tanh
    with torch.no_grad():
        for conv in gan.G.to_rgb:
            conv.weight.mul_(50)  # push the pre-activation far outside [-1, 1]
    for fraction in [0.3, 0.8, 1.0]:  # mid-stage, mid-fade, full size
        gan.set_progress(fraction)
        x = gan.G(torch.randn(8, 100), torch.tensor([0, 1] * 4))
        assert x.abs().max() <= 1 and x.abs().max() > 0.99
    old = gan.args()
    del old["pggan_tanh"]  # a model.pt written before the key
    linear = gan_from_args(old)
    linear.G.load_state_dict(gan.G.state_dict())
    assert not linear.cfg.pggan_tanh and linear.G(torch.randn(8, 100), torch.tensor([0, 1] * 4)).abs().max() > 1


def test_learning_rate_is_the_seeds_except_for_pggan():
    """PGGAN's equalised-learning-rate weights are stored at N(0, 1): at the seed's 2e-4 one Adam step
    moves them ~50x less, relative to their size, than DCGAN's N(0, 0.02) weights; its default is the
    paper's 1e-3. An explicit `lr` holds for every GAN."""
    pggan, dcgan, d2gan = (create_gan(n, 2, 1, width=4) for n in ("pggan", "dcgan", "d2gan"))
    assert learning_rate(GANTrainConfig(), pggan) == 1e-3
    assert learning_rate(GANTrainConfig(), dcgan) == learning_rate(GANTrainConfig(), d2gan) == 2e-4
    assert learning_rate(GANTrainConfig(lr=5e-4), pggan) == 5e-4
    conv = next(m for m in pggan.G.modules() if isinstance(m, EqualizedConv2d))
    dc_conv = next(m for m in dcgan.G.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    assert conv.weight.std() > 0.5 and dc_conv.weight.std() < 0.05  # what an Adam step is relative to


def test_dcgan_calibrate_gives_eval_mode_statistics_of_current_weights():
    torch.manual_seed(0)
    gan = create_gan("dcgan", n_classes=2, channels=1, size=16, width=8)
    bn = next(m for m in gan.G.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.all(bn.running_var == 1)
    gan.calibrate(batches=2, batch_size=16)
    assert not torch.all(bn.running_var == 1) and bn.momentum == 0.1


def test_layers():
    x = torch.randn(8, 5, 3, 3) * 7
    assert torch.allclose(PixelNorm()(x).pow(2).mean(dim=1), torch.ones(8, 3, 3), atol=1e-4)
    same = torch.randn(1, 5, 3, 3).repeat(8, 1, 1, 1)
    out = MinibatchStdDev(4)(same)
    assert out.shape == (8, 6, 3, 3) and out[:, -1].abs().max() < 1e-3  # identical samples: no spread
    assert MinibatchStdDev(4)(torch.randn(6, 5, 3, 3)).shape == (6, 6, 3, 3)  # group shrinks to fit the batch
    conv = EqualizedConv2d(4, 2, 3, padding=1)
    assert conv.scale == pytest.approx(math.sqrt(2 / 36)) and conv.weight.std() > 0.5  # N(0, 1) storage
    head = ProjectionHead(6, n_classes=3, conditional=True, heads=2)
    assert head(torch.randn(5, 6), torch.tensor([0, 1, 2, 0, 1])).shape == (5, 2)


def test_bad_sizes_are_errors():
    with pytest.raises(InputError, match="power of two"):
        create_gan("dcgan", 2, 1, size=48)
