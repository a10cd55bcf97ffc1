"""Domain events, written to an outbox in the transaction of the change they
report and delivered after the commit by an owned relay (at least once, in order
per call, each handler isolated and retried)."""
