"""The WebSocket hub: one socket per client, bounded sends, delivery across nodes."""
