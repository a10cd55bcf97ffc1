"""What a new socket is told: one read for a customer's hello, shared by its hooks."""
