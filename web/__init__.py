"""web: the Flask screens (import name appliance_web)."""
