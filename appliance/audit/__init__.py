"""The append-only audit log, its chain format and the device identity."""
