"""The audit hub: receives signed batches and heartbeats from the fleet."""
