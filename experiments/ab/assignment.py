"""Deterministic assignment of units (customers, sessions) to the arms of an online experiment.

No state and no I/O: every serving worker, batch job or storefront computes the same arm from the
experiment's design and the unit id, so an assignment never has to be stored or looked up.

A unit's arm comes from two independent uniform numbers, each the top 53 bits of the first 8 bytes of
a SHA-256 digest (big-endian) over 2**53, so that any language's doubles give the same number:

- ``enrolment = u("{salt}:{experiment}:enrol:{unit}")``: the unit is in the experiment when it is below
  ``traffic``. Raising ``traffic`` only adds units; nobody already in changes arm.
- ``bucket = u("{salt}:{experiment}:arm:{unit}")``: the arm is the first whose cumulative weight share
  exceeds it. Arms keep their buckets when ``traffic`` changes; changing the weights moves only the units
  between the old and new boundaries.

The salt defaults to the experiment id. The experiment id is hashed too, so two experiments split their
units independently whatever their salts; a new salt reshuffles everyone, which is how an experiment is
restarted without carry-over.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The exposure log, which serving writes and analysis reads: one event per unit's first exposure under
#: an experiment's salt (a restart with a new salt exposes everyone afresh), with the fields of
#: :data:`EXPOSURE_FIELDS` (``at`` in ISO 8601, UTC).
EXPOSURES_STREAM = "experiment_exposures"
EXPOSURE_FIELDS = ("experiment_id", "salt", "unit_id", "arm", "at")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class DesignError(ValueError):
    """An experiment design is invalid; the message names the experiment and the field."""


@dataclass(frozen=True)
class Arm:
    name: str
    weight: float


@dataclass(frozen=True)
class ExperimentDesign:
    """An experiment's arms (the first is the control) with their relative weights, the share of units
    enrolled (``traffic``) and the hashing salt."""

    id: str
    arms: tuple[Arm, ...]
    traffic: float = 1.0
    salt: str | None = None

    def __post_init__(self) -> None:
        where = f"experiment {self.id!r}"
        if not isinstance(self.id, str) or not _NAME.match(self.id):
            raise DesignError(f"experiment id {self.id!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if len(self.arms) < 2:
            raise DesignError(f"{where}: arms needs at least two entries (a control and a treatment), "
                              f"got {len(self.arms)}")
        names = [arm.name for arm in self.arms]
        for arm in self.arms:
            if not isinstance(arm.name, str) or not _NAME.match(arm.name):
                raise DesignError(f"{where}: arm name {arm.name!r} must be 1-64 letters, digits, '_', '.' or '-'")
            if isinstance(arm.weight, bool) or not isinstance(arm.weight, int | float) \
                    or not math.isfinite(arm.weight) or arm.weight <= 0:
                raise DesignError(f"{where}: arms.{arm.name}.weight must be a positive number, got {arm.weight!r}")
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise DesignError(f"{where}: arm names must be unique, repeated: {duplicated}")
        if isinstance(self.traffic, bool) or not isinstance(self.traffic, int | float) \
                or not 0 < self.traffic <= 1:
            raise DesignError(f"{where}: traffic must be in (0, 1], got {self.traffic!r}")
        if self.salt is not None and (not isinstance(self.salt, str) or not self.salt):
            raise DesignError(f"{where}: salt must be a non-empty string, got {self.salt!r}")

    @classmethod
    def from_mapping(cls, experiment_id: str, raw: Mapping[str, Any]) -> ExperimentDesign:
        """From ``{arms: {control: 1, treatment: 1}, traffic: 0.5, salt: ...}`` (arms in order, the first
        the control; a list of names means equal weights)."""
        where = f"experiment {experiment_id!r}"
        if not isinstance(raw, Mapping):
            raise DesignError(f"{where}: expected a mapping with arms, traffic and salt, got {type(raw).__name__}")
        unknown = sorted(set(raw) - {"arms", "traffic", "salt"})
        if unknown:
            raise DesignError(f"{where}: unknown field(s) {unknown}; expected arms, traffic, salt")
        arms = raw.get("arms")
        if isinstance(arms, list):
            if not all(isinstance(name, str) for name in arms):
                raise DesignError(f"{where}: arms as a list holds arm names only, got {arms}; give weights as "
                                  "a mapping {name: weight}")
            if len(set(arms)) < len(arms):
                raise DesignError(f"{where}: arm names must be unique, got {arms}")
            arms = dict.fromkeys(arms, 1.0)
        if not isinstance(arms, Mapping):
            raise DesignError(f"{where}: arms must map arm names to weights (or list names), got {arms!r}")
        return cls(experiment_id, tuple(Arm(name, weight) for name, weight in arms.items()),
                   raw.get("traffic", 1.0), raw.get("salt"))

    @property
    def hash_salt(self) -> str:
        return self.salt or self.id

    @property
    def control(self) -> str:
        return self.arms[0].name

    @property
    def weights(self) -> dict[str, float]:
        return {arm.name: float(arm.weight) for arm in self.arms}

    def assign(self, unit_id: str) -> str | None:
        """The unit's arm, or None when it is outside the experiment's traffic."""
        salt = self.hash_salt
        if unit_fraction(f"{salt}:{self.id}:enrol:{unit_id}") >= self.traffic:
            return None
        bucket = unit_fraction(f"{salt}:{self.id}:arm:{unit_id}")
        total = sum(arm.weight for arm in self.arms)
        cumulative = 0.0
        for arm in self.arms[:-1]:
            cumulative += arm.weight
            if bucket < cumulative / total:
                return arm.name
        return self.arms[-1].name


def unit_fraction(text: str) -> float:
    """A number in [0, 1) from ``text``: the top 53 bits of the first 8 bytes of its SHA-256 (UTF-8) over
    2**53 (exact in a double; 64 bits would round the largest values up to 1.0)."""
    return (int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 11) / 2.0 ** 53
