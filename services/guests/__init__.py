"""The guests service."""
