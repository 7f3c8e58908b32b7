"""Governance: who may see what (security context, access policies, masking), what ran (audit),
where numbers come from (lineage), and whether the data can be trusted (quality)."""
