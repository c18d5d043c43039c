"""Customer intelligence: purchase summaries, BG/NBD purchase counts, Gamma-Gamma spend and CLV."""

from recsys.models.customers.bgnbd import BetaGeoModel, DegenerateFitError, FitDiagnostics
from recsys.models.customers.gamma_gamma import GammaGammaModel
from recsys.models.customers.rfm_summary import summarize_purchases

__all__ = ["BetaGeoModel", "DegenerateFitError", "FitDiagnostics", "GammaGammaModel", "summarize_purchases"]
