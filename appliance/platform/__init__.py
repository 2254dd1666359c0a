"""The bottom part: small helpers every process shares (atomic files, secret files, backoff,
log limits, systemd notification, the bounded HTTP server). Imports nothing above the core."""
