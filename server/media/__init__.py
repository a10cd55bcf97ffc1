"""Media sessions of calls: start, relay, drop, return, restart, grace expiry."""
