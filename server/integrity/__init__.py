"""Video integrity in the server: status per call, the desk's notices, liveness challenges."""
