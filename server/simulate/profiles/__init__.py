"""Packaged simulation profiles (YAML); ``weekday.yaml`` is the default."""
