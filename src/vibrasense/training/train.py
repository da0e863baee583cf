"""One training run: fit a detector on normal recordings, evaluate it, track everything in MLflow, register it."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning
import mlflow
import numpy as np
import pandas as pd
import yaml

from vibrasense.alarms import LearnedLevels, learn_levels, save_learned_levels
from vibrasense.config import Settings
from vibrasense.errors import ModelError
from vibrasense.inference.domain import DomainReference, signatures_of
from vibrasense.inference.model_inputs import ModelInputs, shared_context
from vibrasense.models.base import Detector, detector_class, get_detector, validate_params
from vibrasense.registry import DETECTOR_ARTIFACT, assign_alias, experiment_id, tracking_client
from vibrasense.registry.pyfunc import RecordingScorerModel, input_example, signature
from vibrasense.training import plots
from vibrasense.training.data import TrainingData, anomaly_labels, load_training_data
from vibrasense.training.metrics import grouped_metrics
from vibrasense.training.reference import write_reference

log = logging.getLogger(__name__)

AUTO_VALIDATION_FRACTION = 0.3
MIN_RECORDINGS_FOR_LEVELS = 5
"""A machine with fewer normal training recordings takes the global alarm levels."""


@dataclass
class TrainingResult:
    """What ``train_and_register`` produced."""

    run_id: str
    model_version: str
    metrics: dict[str, float]
    alias: str
    model_name: str = ""
    threshold: float = float("nan")
    notes: list[str] = field(default_factory=list)


@dataclass
class Evaluation:
    """Scores and metrics of one detector on labelled test recordings."""

    rows: pd.DataFrame
    labels: np.ndarray
    scores: np.ndarray
    metrics: dict[str, float]


def build_detector(settings: Settings, model_name: str | None = None) -> Detector:
    """The detector ``model_name`` (default ``training.model.name``), configured by the settings.

    One rule for every detector: the shared ``training.*`` settings its constructor accepts
    (:meth:`Detector.params_from_settings`), then ``training.model.params`` over them when it is the
    configured detector. An unknown name or parameter, or a wrong type, is a :class:`ModelError` naming
    the field, raised before any data is read.
    """
    training = settings.training
    name = model_name or training.model.name
    cls = detector_class(name)
    configured = training.model.params if name == training.model.name else {}
    shared = cls.params_from_settings(training.model_dump(exclude={"model"}))
    return get_detector(name, **(shared | validate_params(cls, configured, "training.model.params")))


def fit_detector(
    detector: Detector, data: TrainingData, checkpoint_dir: Path | None = None
) -> tuple[Detector, pd.DataFrame, list[str]]:
    """Fit on the normal training rows; returns the detector, the rows left for evaluation, and notes."""
    notes: list[str] = []
    test = data.test
    options = {"checkpoint_dir": checkpoint_dir} if detector.input_kind == "logmel" else {}
    if detector.selects_on_validation:
        labels = anomaly_labels(test)
        extra: dict[str, Any] = {}
        if data.logmel is not None:
            extra["logmel"] = data.inputs("logmel", data.train)
        if len(test) >= 10 and labels.min() == 0 and labels.max() == 1:
            validation = test.groupby("label", group_keys=False).sample(
                frac=AUTO_VALIDATION_FRACTION, random_state=detector.seed
            )
            test = test.drop(index=validation.index)
            extra |= {"X_val": data.inputs("tabular", validation), "y_val": anomaly_labels(validation)}
            if data.logmel is not None:
                extra["logmel_val"] = data.inputs("logmel", validation)
            notes.append(
                f"{detector.name}: {len(validation)} labelled test recordings ({AUTO_VALIDATION_FRACTION:.0%}) "
                "used for selection and left out of evaluation"
            )
        detector.fit(data.inputs("tabular", data.train), **extra, **options)
        report = detector.selection_report_
        notes.append(f"{detector.name} selected {report['selected']}: {report['reason']}")
    else:
        detector.fit(data.inputs(detector, data.train), **options)
    return detector, test.reset_index(drop=True), notes


def evaluate(detector: Detector, data: TrainingData, rows: pd.DataFrame | None = None) -> Evaluation:
    """Score labelled test recordings; raises :class:`ModelError` naming the split when there are none."""
    rows = data.test if rows is None else rows
    if rows.empty:
        raise ModelError(
            f"{data.features_dir}: evaluation needs labelled recordings in the test split (split 'test' with "
            "label normal or anomaly; or, for layouts without splits, normal and anomaly folders); none found. "
            "Add test recordings and re-run `vibrasense features`"
        )
    scores = detector.score(data.inputs(detector, rows))
    labels = anomaly_labels(rows)
    return Evaluation(rows, labels, scores, grouped_metrics(rows, scores, detector.threshold_))


def train_and_register(
    settings: Settings, features_dir: Path | str, model_name: str | None = None, tags: dict[str, str] | None = None
) -> TrainingResult:
    """Train ``model_name`` (default ``training.model``) on ``features_dir``, track it, register it.

    The first registered version gets the alias ``champion``, later ones ``challenger``. ``tags`` are set on the
    MLflow run (the retraining pipeline finds its own runs by them).
    """
    client = tracking_client(settings)
    detector = build_detector(settings, model_name)  # an unknown model name fails before any data is read
    data = load_training_data(settings, features_dir)
    lightning.seed_everything(settings.training.seed, verbose=False)
    experiment = experiment_id(client, settings, settings.tracking.experiment)
    with mlflow.start_run(experiment_id=experiment) as run:
        run_id = run.info.run_id
        checkpoints = settings.workdir.resolve() / "checkpoints" / run_id
        started = time.perf_counter()
        detector, test_rows, notes = fit_detector(detector, data, checkpoints)
        fit_seconds = time.perf_counter() - started
        mlflow.log_params(_params(settings, detector, data) | {"fit_seconds": round(fit_seconds, 2)})
        mlflow.set_tags(
            {
                "vibrasense.detector": detector.name,
                "vibrasense.feature_service": data.feature_service,
                "vibrasense.data_hash": data.data_hash,
                "vibrasense.split_rule": data.split_rule,
                "vibrasense.feature_spec": data.spec.hash,
            }
            | (tags or {})
        )
        for row in getattr(getattr(detector, "best_", detector), "history_", []):
            step = int(row["epoch"])
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=step)
        metrics: dict[str, float] = {"threshold": float(detector.threshold_)}
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            evaluation = None
            if test_rows.empty:
                notes.append("no labelled test recordings (split 'test', label normal/anomaly): metrics not computed")
            else:
                evaluation = evaluate(detector, data, test_rows)
                metrics |= evaluation.metrics
                if "auc" not in evaluation.metrics:
                    notes.append("test recordings hold one class only: AUC and pAUC not computed")
                _log_figures(evaluation, detector, folder)
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
            config = folder / "config.yaml"
            config.write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
            mlflow.log_artifact(str(config))
            detector_dir = save_model_folder(detector, data, folder / DETECTOR_ARTIFACT, settings.training.domain_limit)
            write_reference(data, test_rows, evaluation.scores if evaluation else None, detector_dir)
            mlflow.log_artifacts(str(detector_dir), DETECTOR_ARTIFACT)
            if notes:
                mlflow.set_tag("vibrasense.notes", " | ".join(notes))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RecordingScorerModel(),
                artifacts={DETECTOR_ARTIFACT: str(detector_dir)},
                model_config={"name": settings.tracking.registered_model, "version": run_id},
                signature=signature(),
                input_example=input_example(settings.signals.sample_rate),
                pip_requirements=["vibrasense", "mlflow", "torch", "scikit-learn", "numpy", "pandas"],
            )
    version = mlflow.register_model(info.model_uri, settings.tracking.registered_model)
    alias = assign_alias(client, settings, version.version)
    for note in notes:
        log.info(note)
    return TrainingResult(
        run_id=run_id,
        model_version=str(version.version),
        metrics=metrics,
        alias=alias,
        model_name=detector.name,
        threshold=float(detector.threshold_),
        notes=notes,
    )


def save_model_folder(detector: Detector, data: TrainingData, folder: Path, domain_limit: float) -> Path:
    """The detector's files plus the feature spec it was trained on, the inputs it reads and the signatures of
    its training recordings (:mod:`vibrasense.inference.domain`): what inference loads."""
    detector.save(folder)
    data.spec.save(folder)
    leaf = getattr(detector, "best_", detector)
    inputs = ModelInputs(
        kind=detector.input_kind,
        columns=tuple(getattr(leaf, "kept_columns_", ())),
        default_context=shared_context(data.train["bearing"], data.train["shaft_hz"]),
        min_sample_rate=float(pd.concat([data.train["sample_rate"], data.test["sample_rate"]]).min()),
    )
    inputs.save(folder)
    domain_reference(data, inputs, getattr(detector, "seed", 0), domain_limit).save(folder)
    save_learned_levels(folder, learn_alarm_levels(detector, data))
    return folder


def domain_reference(data: TrainingData, inputs: ModelInputs, seed: int, limit: float) -> DomainReference:
    """The signatures of the normal training recordings, by machine: their mean log-mel spectra (the feature
    rows the model reads when the run kept no log-mel), against which serving tells a recording of another
    machine from an anomaly of this one."""
    machines = data.train["machine_id"].astype(str).tolist() if "machine_id" in data.train else None
    if data.logmel is not None and all(r in data.logmel for r in data.train["recording_id"]):
        signatures = signatures_of(data.inputs("logmel", data.train))
        return DomainReference.fit(signatures, limit, machines, "logmel", seed)
    rows = data.train[list(inputs.columns)].to_numpy(dtype=np.float64)
    return DomainReference.fit(rows, limit, machines, "columns", seed)


def learn_alarm_levels(detector: Detector, data: TrainingData, rate_window: int = 10) -> LearnedLevels:
    """Alarm levels from the scores of the normal training recordings by models that did not see them
    (``detector.calibration_``, :mod:`vibrasense.models.calibration`) and the overall RMS (``vib_rms``) of every
    one: over all of them, and per machine id with at least :data:`MIN_RECORDINGS_FOR_LEVELS` scores."""
    normal = detector.calibration_
    log.info("alarm levels from %d normal scores (%s)", normal.scores.size, normal.source)
    train = data.train
    rms = train["vib_rms"].to_numpy(dtype=np.float64) if "vib_rms" in train else None
    threshold = float(detector.threshold_)
    default = learn_levels(normal.scores, threshold, rms, rate_window)
    machines = {}
    if "machine_id" in train:
        ids = train["machine_id"].astype(str).to_numpy()
        scored_ids = ids[normal.positions]
        for machine_id in np.unique(scored_ids):
            mine = scored_ids == machine_id
            if mine.sum() >= MIN_RECORDINGS_FOR_LEVELS:
                machine_rms = rms[ids == machine_id] if rms is not None else None
                machines[str(machine_id)] = learn_levels(normal.scores[mine], threshold, machine_rms, rate_window)
    return LearnedLevels(default, machines)


def _params(settings: Settings, detector: Detector, data: TrainingData) -> dict[str, Any]:
    params = {f"model.{k}": v for k, v in detector.get_params().items()}
    params |= {
        "model": detector.name,
        "features_dir": str(Path(data.features_dir).resolve()),
        "n_train": len(data.train),
        "n_test": len(data.test),
        "training.threshold_method": settings.training.threshold_method,
        "training.threshold_percentile": settings.training.threshold_percentile,
        "training.seed": settings.training.seed,
        "threshold_calibration": f"{detector.calibration_.source} ({detector.calibration_.scores.size} normal scores)",
    }
    if hasattr(detector, "epochs_trained_"):
        params["epochs_trained"] = detector.epochs_trained_
    return {k: (str(v)[:500] if not isinstance(v, int | float | str) else v) for k, v in params.items()}


def _log_figures(evaluation: Evaluation, detector: Detector, folder: Path) -> None:
    title = f"{detector.name} on {len(evaluation.rows)} test recordings"
    paths = [
        plots.roc_plot(evaluation.labels, evaluation.scores, folder / "roc_curve.png", title),
        plots.score_histogram(
            evaluation.labels, evaluation.scores, detector.threshold_, folder / "score_histogram.png", title
        ),
        *plots.confusion_plot(evaluation.metrics, folder / "confusion_matrix.png", folder / "confusion_matrix.json"),
    ]
    for path in paths:
        if path is not None:
            mlflow.log_artifact(str(path), "evaluation")
