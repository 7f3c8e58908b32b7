"""The agent: plain-language questions answered through the semantic layer (LLM or offline)."""
