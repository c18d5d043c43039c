"""Customer intelligence: point-in-time features, RFM segments, behavioural clusters and churn."""
