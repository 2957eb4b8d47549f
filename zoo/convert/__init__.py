"""Checkpoint converters."""
