"""sora-cli: words, photos and clips into short videos, on local diffusers pipelines."""

__version__ = "0.1.0"
