"""The media node's parts: what the relay hands to the recorder and the analysers.

:mod:`signaling.media.tap` is pure (no aiortc, no I/O); the relay that fills it
and the recorder that drains it live in their own modules.
"""
