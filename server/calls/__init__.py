"""The call lifecycle: state machine, persistence helpers and the service layer."""
