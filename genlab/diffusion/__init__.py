"""Diffusion noise schedules and samplers, separate from the denoising network."""
