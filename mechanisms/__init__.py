"""mechanisms package."""
