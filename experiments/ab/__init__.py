"""Online experiments: deterministic assignment of units to arms, and the statistics of their outcomes.

``assignment`` is pure (no I/O, standard library only) so that serving may use it; ``statistics`` works
from per-arm sums; ``report`` turns one row per unit into a comparison of every arm with the control;
``cli`` is ``recsys ab``. Nothing is re-exported here, so that the command line loads only what it runs.
"""
