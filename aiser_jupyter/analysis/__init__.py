"""Insights: what changed, what is unusual and why -- trends, seasons, anomalies, forecasts,
drivers -- computed from a result with numpy/pandas/scipy, ranked by how much they matter."""

from aiser_jupyter.analysis.analyze import analyze
from aiser_jupyter.analysis.insight import Insight, Insights, InsightsError, insights_text

__all__ = ["Insight", "Insights", "InsightsError", "analyze", "insights_text"]
