"""Online experiments: each unit's arm, computed from the experiment's design, and its first exposure
logged for analysis. No web framework here.

Designs come from a YAML file (``RECSYS_SERVING_EXPERIMENTS_PATH``)::

    experiments:
      home-recs: {arms: {control: 1, treatment: 1}, traffic: 0.5}

Assignment needs no state (:mod:`experiments.ab.assignment`), so every worker answers the same. An
exposure, the moment a unit is shown its arm, is appended to the ``experiment_exposures`` log of the
limits store, once per unit, experiment and salt (a restart with a new salt reshuffles the arms, so
everyone's next exposure is logged again): an idempotency marker kept for ``exposure_ttl_seconds``
drops repeats in the same atomic step. The log keeps about ``exposure_log_max`` entries, all experiments
together, and drops the oldest beyond that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import yaml

from experiments.ab.assignment import EXPOSURES_STREAM, DesignError, ExperimentDesign
from feature_store import Acquired, Event, LimitsStore, Recording, StoreUnavailableError
from recsys.yaml_text import load_yaml
from serving.services.clock import now_iso

EXPOSURE_TTL_SECONDS = 180 * 86_400  # longer than any experiment is expected to run

log = logging.getLogger("recsys.serving")


class UnknownExperimentError(LookupError):
    def __init__(self, experiment_id: str, known: list[str]) -> None:
        super().__init__(f"experiment {experiment_id!r} is not configured; configured: {known}")


def load_designs(path: str | Path) -> dict[str, ExperimentDesign]:
    """The designs of a YAML file ``experiments: {id: {arms, traffic, salt}}``; DesignError names the
    file, the experiment and the field."""
    try:
        raw = load_yaml(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DesignError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("experiments"), Mapping):
        raise DesignError(f"{path}: expected a mapping 'experiments: {{id: {{arms: ..., traffic: ...}}}}'")
    designs = {}
    for experiment_id, design in raw["experiments"].items():
        try:
            designs[str(experiment_id)] = ExperimentDesign.from_mapping(str(experiment_id), design)
        except DesignError as exc:
            raise DesignError(f"{path}: {exc}") from exc
    return designs


class ExperimentService:
    def __init__(self, designs: Mapping[str, ExperimentDesign], limits: LimitsStore, *,
                 exposure_log_max: int = 10_000_000, exposure_ttl_seconds: float = EXPOSURE_TTL_SECONDS) -> None:
        self.designs = dict(designs)
        self.limits = limits
        self.exposure_log_max = exposure_log_max
        self.exposure_ttl_seconds = exposure_ttl_seconds

    def listing(self) -> dict:
        return {"experiments": [_describe(design) for design in self.designs.values()]}

    async def assignment(self, experiment_id: str, unit_id: str, *, expose: bool = True) -> dict:
        design = self.designs.get(experiment_id)
        if design is None:
            raise UnknownExperimentError(experiment_id, sorted(self.designs))
        arm = design.assign(unit_id)
        first_exposure, logged = False, None
        if arm is not None and expose:
            # The arm needs no state: when the exposure cannot be logged the storefront still shows it, and
            # the answer says it is not on record.
            outcome = await self._log_exposure(design, unit_id, arm)
            first_exposure, logged = bool(outcome), outcome is not None
        return {"experiment_id": experiment_id, "unit_id": unit_id, "arm": arm, "enrolled": arm is not None,
                "control": arm == design.control if arm is not None else None,
                "first_exposure": first_exposure, "exposure_logged": logged}

    async def _log_exposure(self, design: ExperimentDesign, unit_id: str, arm: str) -> bool | None:
        """Whether this was the unit's first exposure; None when the limits store could not be reached."""
        salt = design.hash_salt
        fields = {"experiment_id": design.id, "salt": salt, "unit_id": unit_id, "arm": arm, "at": now_iso()}
        try:
            outcome = await self.limits.acquire_first(
                [()], 1, once=f"exposure:{design.id}:{salt}:{unit_id}", once_ttl_seconds=self.exposure_ttl_seconds,
                recording=Recording((), Event(EXPOSURES_STREAM, fields, self.exposure_log_max)))
        except StoreUnavailableError as exc:
            log.warning("exposure of %s to %s not logged, the limits store is unavailable: %s", unit_id, design.id, exc)
            return None
        return outcome is not Acquired.DUPLICATE


def _describe(design: ExperimentDesign) -> dict:
    return {"experiment_id": design.id, "control": design.control, "arms": design.weights,
            "traffic": design.traffic}


