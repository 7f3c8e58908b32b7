"""Data protection: what is held about a person (GDPR export and erasure) and for how long
(retention). Encryption at rest itself is at the bottom, in ``security.keys``/``atrest``."""

from aiser_jupyter.protection.privacy import Privacy

__all__ = ["Privacy"]
