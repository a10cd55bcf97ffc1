"""Callbacks: a waiting customer may choose to be called back instead of waiting.

- :mod:`.policy`: pure rules (allowed local hours, consent and do-not-call, the
  daily attempt cap, whose turn it is), all taking ``now`` and a time zone.
- :mod:`.state`: the callback's states and the outcomes of its attempts.
- :mod:`.repository`: SQL access with conditional updates, so two nodes racing on
  one callback cannot both act on it.
- :mod:`.service`: converting a call, ringing, answering, declining, cancelling,
  consent, and the sweeper the dispatcher runs every few seconds.
- :mod:`.offers`: the callback option in ``queue.update`` (a call service hook).
"""
