"""Video integrity: is the customer on screen live and alone?

The media node hands every encoded frame of the customer's video to an
:class:`~signaling.integrity.tap.AnalyserTap`; it batches them and sends a
sample a few times a second to a worker process
(:mod:`signaling.integrity.worker`), which decodes, hashes, looks for faces and
runs the detectors (:mod:`signaling.integrity.detectors`, pure). Liveness
challenges are generated and verified by :mod:`signaling.integrity.liveness`
(pure). Nothing here decodes on the event loop.
"""
