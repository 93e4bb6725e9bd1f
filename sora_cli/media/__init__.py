"""Encoding, probing and atomic writes of media files (ffmpeg from imageio-ffmpeg)."""
