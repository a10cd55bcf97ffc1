"""Scenario redirects: the mobile banking backend opens the cloud branch with context.

- :mod:`.signature`: HMAC verification of the raw request (pure, ``now`` passed in).
- :mod:`.schemas`: the redirect on the wire, with a closed context per kind.
- :mod:`.tickets`: ticket rules, pure: expiry, refusals, what a ticket grants a call.
- :mod:`.throttle`: a bound on audit entries for unsigned junk.
- :mod:`.desk`: :class:`TicketDesk`, the database and audit side of all of it.
"""

from __future__ import annotations
