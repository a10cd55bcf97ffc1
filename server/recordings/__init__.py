"""Compliance recording: the recorder the media node opens per call, its index, API and export."""
