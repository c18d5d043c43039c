"""Transactions in one canonical schema: loading, validation, cleaning, adapters and a synthetic shop."""

from recsys.data.cleaning import CleaningReport, CleaningResult, CleaningRules, clean_transactions
from recsys.data.loaders import TransactionSchemaError, load_transactions, validate_transactions
from recsys.data.online_retail import load_online_retail
from recsys.data.synthetic import generate_transactions

__all__ = [
    "CleaningReport",
    "CleaningResult",
    "CleaningRules",
    "TransactionSchemaError",
    "clean_transactions",
    "generate_transactions",
    "load_online_retail",
    "load_transactions",
    "validate_transactions",
]
