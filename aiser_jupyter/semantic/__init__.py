"""The semantic layer: Cube's data model and query format, compiled with sqlglot."""
