"""Turning what a user typed into what an engine runs: parameters, templates, snippets."""
