"""outer package."""
