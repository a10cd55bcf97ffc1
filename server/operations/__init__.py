"""In-call operations: risk check inline, review, the customer's confirmation, execution."""
