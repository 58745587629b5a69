"""Lightning callbacks, checkpoint I/O and Hydra callbacks used by genlab's configs."""
