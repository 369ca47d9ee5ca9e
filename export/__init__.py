"""Command-line export of a trained VAE's decoder: `python -m export --help`."""
