"""Tokens, passwords and who may touch what."""
