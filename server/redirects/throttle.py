"""The audit budget for refused redirects: :class:`server.auth.audit_budget.AuditBudget`.

It is shared with the login throttle and lives with it, in ``server/auth``; this
name stays for the redirect code that imports it from here.
"""

from __future__ import annotations

from server.auth.audit_budget import AuditBudget as AuditBudget
