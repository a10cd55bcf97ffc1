"""In-call banking: the core-banking boundary and its embedded ledger.

- :mod:`server.banking.core`: the contract of the core-banking port
  (:class:`server.ports.CoreBanking`), :class:`ExecutionFailed` and the money helpers.
- :mod:`server.banking.ledger`: :class:`SqlLedger`, the double-entry ledger in the
  service's own database.
- :mod:`server.banking.profiles`: :func:`load_risk_inputs`, the risk engine's view
  of a customer, read from the ledger.
- :mod:`server.banking.seed_ledger`: demo accounts and history for C1001 to C1020.
"""

from server.banking.core import CLEARING_ACCOUNT_ID, ExecutionFailed
from server.banking.ledger import SqlLedger
from server.banking.profiles import load_risk_inputs, load_risk_lists
from server.ports import CoreBanking, Transaction

__all__ = [
    "CLEARING_ACCOUNT_ID",
    "CoreBanking",
    "ExecutionFailed",
    "SqlLedger",
    "Transaction",
    "load_risk_inputs",
    "load_risk_lists",
]
