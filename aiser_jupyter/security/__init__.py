"""Keeping secrets out of sight, and (later) guards, policies and audit."""
