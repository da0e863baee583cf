"""The domain reference: a machine's own recordings and faults lie inside it, another machine's far outside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vibrasense.config import load_settings
from vibrasense.errors import ModelError
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.inference.domain import DOMAIN_FILE, DomainReference, signatures_of
from vibrasense.models import get_detector
from vibrasense.signals.synthetic import ANOMALIES, machine_sound

RATE = 16_000
LIMIT = 4.0
SPEC = FeatureSpec.from_settings(load_settings(None))


def logmel(machine: int, clip: int, anomaly: str | None = None, severity: float = 1.0) -> np.ndarray:
    samples = machine_sound(2.0, RATE, machine, anomaly, clip=clip, severity=severity)  # type: ignore[arg-type]
    return featurize(samples, RATE, SPEC, columns=(), logmel=True).logmel


def signatures(machine: int, clips: range, **fault: object) -> np.ndarray:
    return signatures_of([logmel(machine, clip, **fault) for clip in clips])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def machine_0() -> DomainReference:
    return DomainReference.fit(signatures(0, range(24)), LIMIT)


def test_new_clips_and_faults_of_the_machine_lie_inside_and_another_machine_far_outside(
    machine_0: DomainReference,
) -> None:
    normal = machine_0.distance(signatures(0, range(100, 106)))
    assert normal.max() < 1.5  # in units of the training clips' own spread about their centre
    for anomaly in ANOMALIES:
        assert machine_0.distance(signatures(0, range(200, 202), anomaly=anomaly)).max() < LIMIT, anomaly
    for other in (1, 2, 3):
        assert machine_0.distance(signatures(other, range(300, 302))).min() > 1.5 * LIMIT, other


def test_each_machine_is_its_own_group_so_a_third_is_outside_both() -> None:
    train = np.concatenate([signatures(0, range(12)), signatures(1, range(12))])
    machines = ["m0"] * 12 + ["m1"] * 12
    grouped = DomainReference.fit(train, LIMIT, machines)
    pooled = DomainReference.fit(train, LIMIT)
    third = signatures(2, range(300, 303))
    assert len(grouped.groups) == 2 and len(pooled.groups) == 1
    assert grouped.distance(third).min() > LIMIT
    # pooled, the two machines' spread between them passes for normal variation: the third looks near
    assert pooled.distance(third).max() < grouped.distance(third).min() / 2
    own = np.concatenate([signatures(0, range(100, 102)), signatures(1, range(100, 102))])
    assert grouped.distance(own).max() < 1.5


def test_machines_with_few_recordings_are_pooled_into_one_group() -> None:
    train = np.concatenate([signatures(0, range(8)), signatures(1, range(2)), signatures(2, range(2))])
    reference = DomainReference.fit(train, LIMIT, ["m0"] * 8 + ["m1"] * 2 + ["m2"] * 2)
    assert sorted(len(group.signatures) for group in reference.groups) == [4, 8]


def test_saved_and_loaded_it_measures_the_same_and_an_old_folder_has_none(
    machine_0: DomainReference, tmp_path: Path
) -> None:
    machine_0.save(tmp_path)
    loaded = DomainReference.load(tmp_path)
    assert loaded is not None and loaded.limit == LIMIT and loaded.source == "logmel"
    probe = np.concatenate([signatures(0, range(100, 102)), signatures(1, range(300, 302))])
    np.testing.assert_allclose(loaded.distance(probe), machine_0.distance(probe), rtol=1e-5)
    assert DomainReference.load(tmp_path / "elsewhere") is None


def test_a_corrupt_reference_names_its_file(tmp_path: Path) -> None:
    (tmp_path / DOMAIN_FILE).write_bytes(b"not a numpy archive")
    with pytest.raises(ModelError, match=DOMAIN_FILE):
        DomainReference.load(tmp_path)


def test_a_signature_that_is_not_finite_is_at_infinity_and_fitting_refuses_one(machine_0: DomainReference) -> None:
    probe = signatures(0, range(100, 102))
    probe[1, 3] = np.nan
    distance = machine_0.distance(probe)
    assert np.isfinite(distance[0]) and distance[1] == np.inf
    with pytest.raises(ModelError, match="finite"):
        DomainReference.fit(probe, LIMIT)
    with pytest.raises(ModelError, match="two or more"):
        DomainReference.fit(probe[:1], LIMIT)
    with pytest.raises(ModelError, match="above 0"):
        DomainReference.fit(signatures(0, range(3)), 0.0)
    with pytest.raises(ModelError, match="retrain"):
        machine_0.distance(probe[:, :10])


@pytest.mark.parametrize("kind", ["tabular", "logmel"])
def test_the_scorer_flags_another_machine_as_unknown_domain_not_as_an_anomaly(
    kind: str, machine_0: DomainReference
) -> None:
    columns = tuple(c for c in SPEC.columns if c not in SPEC.envelope_columns)
    clips = [machine_sound(2.0, RATE, 0, clip=clip) for clip in range(24)]
    if kind == "tabular":
        rows = [featurize(c, RATE, SPEC, columns=columns, logmel=False).values for c in clips]
        detector = get_detector("mahalanobis").fit(np.array([[row[c] for c in columns] for row in rows]))
        inputs = ModelInputs("tabular", columns)
    else:
        detector = get_detector("dense-ae", z_dim=4, max_epochs=2, accelerator="cpu").fit(
            [featurize(c, RATE, SPEC).logmel for c in clips]
        )
        inputs = ModelInputs("logmel")
    scorer = ModelScorer(detector, SPEC, inputs, "m0", "1")
    other = machine_sound(2.0, RATE, 1, clip=400)
    assert scorer.score(other, RATE).domain_distance is None  # no reference: judged as before
    scorer.domain = machine_0
    verdict = scorer.score(other, RATE)
    assert verdict.score > verdict.threshold  # the score alone would call it an anomaly
    assert verdict.unknown_domain and not verdict.is_anomaly and verdict.state == "unknown_domain"
    assert verdict.domain_distance > LIMIT
    faulty = scorer.score(machine_sound(2.0, RATE, 0, "bearing", clip=401, severity=2.0), RATE)
    assert not faulty.unknown_domain and faulty.domain_distance < LIMIT
    assert faulty.is_anomaly == (faulty.score > faulty.threshold) and faulty.state in ("anomaly", "normal")


def test_it_knows_the_machines_it_was_trained_on_and_keeps_them_when_saved(tmp_path: Path) -> None:
    train = np.concatenate([signatures(0, range(6)), signatures(1, range(6))])
    reference = DomainReference.fit(train, LIMIT, ["m0"] * 6 + ["m1"] * 6)
    assert reference.knows("m0") and reference.knows("m1")
    assert not reference.knows("m2") and not reference.knows(None)
    reference.save(tmp_path)
    loaded = DomainReference.load(tmp_path)
    assert loaded is not None and loaded.machines == {"m0", "m1"}
    assert DomainReference.fit(train, LIMIT).machines == frozenset()  # recordings that named no machine
