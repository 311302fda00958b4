"""Design generation with GANs (DCGAN, PGGAN, D2GAN) and the preference scorer."""
