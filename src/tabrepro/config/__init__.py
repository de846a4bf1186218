"""Configuration: typed views of params.yaml, and the Hydra composition of conf/ into it."""
