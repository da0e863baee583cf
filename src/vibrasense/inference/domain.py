"""Whether a recording lies within what a model was trained on, or far outside it ("unknown domain").

A model trained on one machine answers nonsense for another: on MIMII fans, normal clips of a fan it never
heard score above the faulty clips of its own. So every model folder keeps, beside the detector, the
*signature* of each normal training recording: its mean log-mel spectrum, computed with the feature spec
recorded with the model (the feature row the model reads when the training run kept no log-mel). Signatures
are grouped by machine; within a group each band is standardised by the group's spread over its
recordings. A new recording's *domain distance* is, for the machine it is nearest to, the root-mean-square
difference to that machine's nearest recording, in units of the typical distance of that machine's own
recordings from their centre (the median; so a new normal recording lies at about 1). Beyond ``limit``
(``training.domain_limit``, default 3) it is "unknown domain": its score says nothing about the machine,
and the verdict says to train on the machine's own normal data.

A fault moves a machine's spectrum too, and a severe one on a very steady machine can move it as far as
another machine does. So the reference keeps the ids of the machines it was trained on, and a recording that
names one of them (:meth:`DomainReference.knows`) is always judged as that machine's, however far it lies: a
fault on a machine the model knows is never withheld. For any other recording an unknown domain raises its
own warning (the ``domain`` alarm condition) rather than passing silently. Measured by ``benchmarks/domain.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vibrasense.errors import ModelError

DOMAIN_FILE = "domain_reference.npz"
MIN_GROUP = 5  # a machine with fewer normal recordings joins the pooled group of such machines
MAX_GROUP_SIGNATURES = 2_000  # nearest-neighbour search over at most this many recordings per machine
MIN_TYPICAL = 1e-6  # keeps the distance finite when a group's recordings all have the same signature
SignatureSource = Literal["logmel", "columns"]


def signatures_of(model_input: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Signatures (recordings, inputs): the mean over frames of each log-mel spectrogram in a sequence of
    them, or the rows of a (recordings, columns) table."""
    if isinstance(model_input, np.ndarray) and model_input.ndim == 2 and model_input.dtype != object:
        return np.asarray(model_input, dtype=np.float64)
    return np.stack([np.asarray(spectrogram, dtype=np.float64).mean(axis=0) for spectrogram in model_input])


@dataclass(frozen=True)
class _Group:
    """One machine's (or the pooled small machines') standardised signatures."""

    centre: np.ndarray
    scale: np.ndarray
    typical: float
    signatures: np.ndarray

    def distance(self, values: np.ndarray) -> np.ndarray:
        standardised = (values - self.centre) / self.scale
        known = self.signatures
        squared = (standardised**2).sum(1)[:, None] - 2 * standardised @ known.T + (known**2).sum(1)[None, :]
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0) / values.shape[1]) / self.typical


@dataclass(frozen=True)
class DomainReference:
    """The signatures of a model's normal training recordings, by machine, and the limit of its domain."""

    source: SignatureSource
    groups: tuple[_Group, ...]
    limit: float
    machines: frozenset[str] = frozenset()
    """The ids of the machines trained on (none when the training recordings named no machine)."""

    @classmethod
    def fit(
        cls,
        signatures: np.ndarray,
        limit: float,
        machines: Sequence[str] | None = None,
        source: SignatureSource = "logmel",
        seed: int = 0,
    ) -> DomainReference:
        """The reference of training ``signatures`` (recordings, inputs), grouped by ``machines`` (one group
        when ``None``); beyond ``limit`` a recording is an unknown domain."""
        values = np.asarray(signatures, dtype=np.float64)
        if values.ndim != 2 or len(values) < 2 or values.shape[1] == 0:
            raise ModelError(
                f"a domain reference needs the signatures of two or more recordings; got shape {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ModelError("a domain reference needs finite signatures; a training recording has NaN or inf")
        if not limit > 0:
            raise ModelError(f"training.domain_limit must be above 0; got {limit}")
        labels = np.asarray(machines if machines is not None else [""] * len(values), dtype=str)
        names, counts = np.unique(labels, return_counts=True)
        small = set(names[counts < MIN_GROUP])
        pooled = np.where(np.isin(labels, list(small)), "\0pooled", labels)
        rng = np.random.default_rng(seed)
        groups = []
        for name in np.unique(pooled):
            members = values[pooled == name]
            if len(members) > MAX_GROUP_SIGNATURES:
                members = members[np.sort(rng.choice(len(members), MAX_GROUP_SIGNATURES, replace=False))]
            groups.append(_fit_group(members))
        return cls(source, tuple(groups), float(limit), frozenset(names[names != ""].tolist()))

    def knows(self, machine_id: str | None) -> bool:
        """Whether ``machine_id`` is one of the machines the model was trained on."""
        return machine_id is not None and machine_id in self.machines

    def distance(self, signatures: np.ndarray) -> np.ndarray:
        """Each signature's domain distance: to its nearest machine, in units of that machine's own spread;
        an input that is not finite puts the recording at infinity."""
        values = np.atleast_2d(np.asarray(signatures, dtype=np.float64))
        size = self.groups[0].centre.size
        if values.shape[1] != size:
            raise ModelError(
                f"the domain reference has {size} inputs, the recording {values.shape[1]}; retrain the model"
            )
        finite = np.isfinite(values).all(axis=1)
        nearest = np.min([group.distance(np.where(finite[:, None], values, 0.0)) for group in self.groups], axis=0)
        return np.where(finite, nearest, np.inf)

    def save(self, folder: Path | str) -> Path:
        """Write :data:`DOMAIN_FILE` into ``folder``."""
        path = Path(folder) / DOMAIN_FILE
        sizes = np.array([len(g.signatures) for g in self.groups])
        np.savez(
            path,
            source=np.array(self.source),
            limit=np.array(self.limit),
            centres=np.stack([g.centre for g in self.groups]),
            scales=np.stack([g.scale for g in self.groups]),
            typicals=np.array([g.typical for g in self.groups]),
            sizes=sizes,
            signatures=np.concatenate([g.signatures for g in self.groups]).astype(np.float32),
            machines=np.array(sorted(self.machines), dtype=str),
        )
        return path

    @classmethod
    def load(cls, folder: Path | str) -> DomainReference | None:
        """The reference saved in ``folder``; ``None`` for a model trained before references were kept."""
        path = Path(folder) / DOMAIN_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                starts = np.concatenate([[0], np.cumsum(data["sizes"])])
                signatures = data["signatures"].astype(np.float64)
                groups = tuple(
                    _Group(centre, scale, float(typical), signatures[starts[i] : starts[i + 1]])
                    for i, (centre, scale, typical) in enumerate(
                        zip(data["centres"], data["scales"], data["typicals"], strict=True)
                    )
                )
                source = str(data["source"])
                limit = float(data["limit"])
                machines = frozenset(data["machines"].tolist()) if "machines" in data else frozenset()
        except (OSError, ValueError, KeyError) as error:
            raise ModelError(f"{path}: unreadable domain reference ({error}); retrain the model") from None
        if source not in ("logmel", "columns") or not groups:
            raise ModelError(f"{path}: not a domain reference this vibrasense reads; retrain the model")
        return cls(source, groups, limit, machines)  # type: ignore[arg-type]


def unknown_domain_message(model: str, distance: float) -> str:
    """What to tell a user whose recording lies beyond the domain limit of ``model``."""
    return (
        f"this recording lies far outside everything model {model} was trained on (domain distance "
        f"{distance:.1f}; a normal recording of a machine it was trained on lies at about 1): its score says "
        "nothing about this machine, so it is not judged an anomaly. Train a model on this machine's own "
        "normal recordings (`vibrasense train`)"
    )


def far_from_machine_message(model: str, machine_id: str, distance: float) -> str:
    """What to tell a user whose recording of a machine ``model`` was trained on lies beyond its domain limit."""
    return (
        f"this recording lies far from machine {machine_id}'s training recordings for model {model} (domain "
        f"distance {distance:.1f}; a normal one lies at about 1). It is judged as that machine's, since a severe "
        "fault moves a spectrum this far; if the sensor was moved or the machine replaced instead, retrain on its "
        "new normal recordings (`vibrasense train`)"
    )


def _fit_group(values: np.ndarray) -> _Group:
    """Centre (median), per-input spread (at least the median spread) and typical distance of a group."""
    centre = np.median(values, axis=0)
    spread = values.std(axis=0)
    scale = np.maximum(spread, max(float(np.median(spread)), MIN_TYPICAL))
    standardised = (values - centre) / scale
    typical = float(np.median(np.sqrt((standardised**2).mean(axis=1)))) if len(values) > 1 else 1.0
    return _Group(centre, scale, max(typical, MIN_TYPICAL), standardised)
