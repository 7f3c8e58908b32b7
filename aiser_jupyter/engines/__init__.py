"""Engines run SQL and hand back Arrow. The Session picks one per connection."""
