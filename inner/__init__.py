"""inner package."""
