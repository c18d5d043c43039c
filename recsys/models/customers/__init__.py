"""Customer intelligence: purchase summaries, BG/NBD purchase counts, Gamma-Gamma spend and CLV."""
