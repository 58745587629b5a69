"""LightningModules: classifier, GAN family, pix2pix, DDPM."""
