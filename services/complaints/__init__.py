"""The complaints service."""
