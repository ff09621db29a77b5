"""comments domain."""
