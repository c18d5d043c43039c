"""Offer policy simulation: a synthetic world whose redemption probabilities per offer and segment are
known, so the regret of each policy against the best fixed policy (per segment, the offer with the
highest true expected value) can be computed exactly.

    .venv/bin/python benchmarks/offers_simulation.py [--decisions 100000] [--seed 0]

Policies, each making one offer per decision through the real decisioning code:
  thompson  Thompson sampling on Beta posteriors per offer and segment, learning from every outcome
  rules     eligible offers ranked by the catalogue's static priors, never learning
  random    a uniformly random eligible offer
Regret is expected (pseudo-)regret: best true expected value minus the chosen offer's, summed over
decisions, so it measures the policy rather than the luck of the redemption draws. The curves are
logged to MLflow (MLFLOW_TRACKING_URI, else var/mlflow.db). Ends with:
    RESULT regret=... random_regret=... rules_regret=...
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.offers import Catalogue, OutcomeCounter, check_eligibility, parse_catalogue, rank_offers  # noqa: E402
from recsys.records import CustomerProfile  # noqa: E402

NOW = datetime(2025, 6, 1, tzinfo=UTC)
SEGMENTS = ["champions", "loyal", "potential", "at_risk", "hibernating"]
SEGMENT_SHARE = [0.10, 0.20, 0.30, 0.25, 0.15]

# Marketers' priors are plausible but wrong in places, as in real life: the true rates below differ.
OFFERS = [
    {"id": "pct-15", "type": "percentage_discount", "discount_percent": 15, "value": 40, "cost": 1.0,
     "prior": {"redemption_rate": 0.08}},
    {"id": "fixed-5", "type": "fixed_amount", "amount": 5, "value": 18, "cost": 0.5,
     "prior": {"redemption_rate": 0.12}},
    {"id": "ship", "type": "free_shipping", "value": 12, "cost": 0.3, "prior": {"redemption_rate": 0.15}},
    {"id": "points", "type": "loyalty_points", "points": 500, "value": 25, "cost": 0.6,
     "prior": {"redemption_rate": 0.10}, "eligibility": {"segments": ["champions", "loyal", "potential"]}},
    {"id": "bundle", "type": "bundle", "discount_percent": 10, "value": 30, "cost": 0.8,
     "prior": {"redemption_rate": 0.06}},
]
TRUE_P = {  # P(redeem) per offer and segment, unknown to every policy
    "pct-15": [0.05, 0.06, 0.07, 0.12, 0.06],
    "fixed-5": [0.06, 0.08, 0.10, 0.09, 0.07],
    "ship": [0.10, 0.12, 0.09, 0.05, 0.04],
    "points": [0.20, 0.09, 0.04, 0.00, 0.00],
    "bundle": [0.04, 0.09, 0.05, 0.03, 0.05],
}


def world_catalogue() -> Catalogue:
    return parse_catalogue({"offers": [{"name": o["id"], **o} for o in OFFERS]})


def segment_profile(segment: str) -> CustomerProfile:
    return CustomerProfile(f"sim-{segment}", segment, 3, 3, 3, churn_probability=0.5, clv=200.0,
                           recency_days=60.0, frequency=3, country="United Kingdom")


def simulate(decisions: int, seed: int) -> dict[str, np.ndarray]:
    catalogue = world_catalogue()
    profiles = [segment_profile(s) for s in SEGMENTS]
    ids = [o.id for o in catalogue.offers]
    eligible = [[i for i, o in enumerate(catalogue.offers) if check_eligibility(o, p, NOW, "item").eligible]
                for p in profiles]
    true_ev = np.array([[TRUE_P[o.id][s] * o.value - o.cost for o in catalogue.offers]
                        for s in range(len(SEGMENTS))])
    best = np.array([true_ev[s, eligible[s]].max() for s in range(len(SEGMENTS))])
    rules_choice = [ids.index(rank_offers(catalogue, p, NOW, recommended_item="item")[0].offer_id) for p in profiles]

    world = np.random.default_rng(seed)
    segments = world.choice(len(SEGMENTS), size=decisions, p=SEGMENT_SHARE)
    uniforms = world.random(decisions)  # one redemption draw per decision, shared by the policies
    explore_rng, random_rng = np.random.default_rng(seed + 1), np.random.default_rng(seed + 2)
    counter = OutcomeCounter()
    regret = {name: np.zeros(decisions) for name in ("thompson", "rules", "random")}
    for t, s in enumerate(segments.tolist()):
        top = rank_offers(catalogue, profiles[s], NOW, outcomes=counter.table, rng=explore_rng,
                          recommended_item="item")[0]
        chosen = ids.index(top.offer_id)
        counter.record(top.offer_id, SEGMENTS[s], bool(uniforms[t] < TRUE_P[top.offer_id][s]))
        regret["thompson"][t] = best[s] - true_ev[s, chosen]
        regret["rules"][t] = best[s] - true_ev[s, rules_choice[s]]
        regret["random"][t] = best[s] - true_ev[s, eligible[s][random_rng.integers(len(eligible[s]))]]
    return {name: np.cumsum(values) for name, values in regret.items()}


def log_to_mlflow(curves: dict[str, np.ndarray], args, log_every: int) -> str:
    from training.settings import TrainingSettings
    from training.tracking import log_metrics, log_params, training_run

    with training_run(TrainingSettings(), "offers-simulation", experiment="offers-simulation") as run:
        log_params({"decisions": args.decisions, "seed": args.seed, "segments": len(SEGMENTS),
                    "offers": len(OFFERS)})
        n = len(curves["thompson"])
        for step in [*range(log_every - 1, n, log_every), n - 1]:
            log_metrics({f"cumulative_regret_{name}": float(curve[step]) for name, curve in curves.items()},
                        step=step + 1)
        return run.info.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=1000, help="decisions between logged curve points")
    parser.add_argument("--no-mlflow", action="store_true", help="skip logging the curves to MLflow")
    args = parser.parse_args()

    started = time.perf_counter()
    curves = simulate(args.decisions, args.seed)
    print(f"simulated {args.decisions:,} decisions per policy in {time.perf_counter() - started:.1f}s")
    for name, curve in curves.items():
        marks = ", ".join(f"{curve[i - 1]:.0f}" for i in (1000, 10_000, args.decisions) if i <= len(curve))
        print(f"  {name:<9} cumulative regret at 1k/10k/end: {marks}")
    if not args.no_mlflow:
        print(f"logged regret curves to MLflow run {log_to_mlflow(curves, args, args.log_every)}")
    regret, random_regret, rules_regret = (curves[n][-1] for n in ("thompson", "random", "rules"))
    print(f"RESULT regret={regret:.1f} random_regret={random_regret:.1f} rules_regret={rules_regret:.1f}")


if __name__ == "__main__":
    main()
