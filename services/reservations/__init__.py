"""The reservations service."""
