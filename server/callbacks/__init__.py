"""Callbacks: a waiting customer may choose to be called back instead of waiting.

- :mod:`.policy`: pure rules (allowed local hours, consent and do-not-call, the
  daily attempt cap, whose turn it is), all taking ``now`` and a time zone.
- :mod:`.state`: the callback's states and the outcomes of its attempts.
- :mod:`.repository`: SQL access with conditional updates, so two nodes racing on
  one callback cannot both act on it.
- :mod:`.service`: the customer's and supervisor's commands: converting a call,
  answering, declining, cancelling, consent and do-not-call.
- :mod:`.changes`: the state changes those commands share with the sweeper
  (closing, ringing, ending a ring, postponing).
- :mod:`.sweeper`: what the dispatcher runs every few seconds: end unanswered
  rings, ring the callbacks whose turn has come.
- :mod:`.views`: how a callback looks, and who may see it.
- :mod:`.offers`: the callback option in ``queue.update`` (a call service hook).
"""
