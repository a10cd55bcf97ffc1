"""Rulesets shipped with the package (YAML files; ``default.yaml`` is the live default)."""
