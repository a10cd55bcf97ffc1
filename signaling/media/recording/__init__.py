"""Compliance recording on the media node: segments as received, sealed, off the loop.

:mod:`.segment` is the stored file format, :mod:`.keys` the per-recording key
and its wrapping, :mod:`.track` muxes one track into segments, :mod:`.writer`
owns a call's writer thread, and :mod:`.storage` keeps closed segments.
"""
