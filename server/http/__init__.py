"""HTTP edge: problem responses, request parsing, authentication, routes."""
