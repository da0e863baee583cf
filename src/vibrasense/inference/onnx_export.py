"""Export a model folder to ONNX: ``model.onnx`` beside the feature spec and the inputs it was trained with.

Every detector exports: the autoencoders through ``torch.onnx.export`` (:mod:`.onnx_autoencoder`), the
scikit-learn ones as small graphs of their own or through skl2onnx (:mod:`.onnx_tabular`); ``auto`` exports
the detector it selected. The detector's name and threshold go into the model's metadata, so the folder
is all :class:`~vibrasense.inference.onnx_runtime.OnnxScorer` needs (no torch, no scikit-learn).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from vibrasense.errors import InputError, ModelError, OutputError
from vibrasense.features.spec import SPEC_FILE, FeatureSpec
from vibrasense.inference.domain import DOMAIN_FILE
from vibrasense.inference.model_inputs import INPUTS_FILE, ModelInputs
from vibrasense.inference.onnx_runtime import DETECTOR_KEY, ONNX_FILE, THRESHOLD_KEY
from vibrasense.models.autoencoder import AutoencoderDetector
from vibrasense.models.base import Detector, load_detector
from vibrasense.models.tabular import TabularDetector


def detector_to_onnx(detector: Detector) -> onnx.ModelProto:
    """The ONNX graph of a fitted detector, with its name and threshold in the metadata."""
    leaf = getattr(detector, "best_", detector)  # `auto` scores with the detector it selected
    if isinstance(leaf, AutoencoderDetector):
        from vibrasense.inference.onnx_autoencoder import autoencoder_to_onnx

        model = autoencoder_to_onnx(leaf)
    elif isinstance(leaf, TabularDetector):
        from vibrasense.inference.onnx_tabular import tabular_to_onnx

        model = tabular_to_onnx(leaf)
    else:
        raise ModelError(f"{leaf.name}: this detector has no ONNX export")
    onnx.helper.set_model_props(model, {DETECTOR_KEY: detector.name, THRESHOLD_KEY: repr(float(detector.threshold_))})
    return model


def export_onnx(folder: Path | str, out: Path | str) -> Path:
    """Write ``out/model.onnx`` for the model folder ``folder``, with copies of its spec and inputs; returns ``out``."""
    source, target = Path(folder), Path(out)
    try:
        FeatureSpec.load(source)  # a folder without a readable spec is refused before the (slow) conversion
    except InputError as error:
        raise ModelError(f"{source}: {error.reason}; retrain it with `vibrasense train`") from None
    inputs = ModelInputs.load(source)
    detector = load_detector(source)
    leaf = getattr(detector, "best_", detector)
    if inputs.kind == "tabular" and tuple(getattr(leaf, "kept_columns_", ())) != inputs.columns:
        raise ModelError(f"{source}: {INPUTS_FILE} names other columns than the detector reads; retrain the model")
    model = detector_to_onnx(detector)
    try:
        target.mkdir(parents=True, exist_ok=True)
        onnx.save_model(model, target / ONNX_FILE)
        for name in (SPEC_FILE, INPUTS_FILE):
            shutil.copyfile(source / name, target / name)
        if (source / DOMAIN_FILE).is_file():  # absent from a folder saved before domain references were kept
            shutil.copyfile(source / DOMAIN_FILE, target / DOMAIN_FILE)
    except OSError as error:
        raise OutputError(f"cannot write the ONNX export into {target}: {error.strerror or error}") from None
    return target
