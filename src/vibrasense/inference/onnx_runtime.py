"""Scoring with ONNX Runtime: an exported model folder in, verdicts on raw samples out, without torch or scikit-learn.

An exported folder (``vibrasense models export --format onnx``) holds ``model.onnx`` (the detector as one
graph: a feature row or a log-mel spectrogram in, the anomaly score out; its threshold in the metadata)
beside the ``feature_spec.json`` and ``model_inputs.json`` of the model it was exported from. The inputs
are computed exactly as :class:`ModelScorer` computes them (the one featurizer, the same spec and context
rules); only the detector runs in ONNX Runtime, on one thread. ONNX models give no explanations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime

from vibrasense.errors import ModelError
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference.domain import DomainReference
from vibrasense.inference.model_inputs import ModelInputs
from vibrasense.inference.scorer import ModelScorer, Verdict, current_spec
from vibrasense.signals.records import SignalContext

ONNX_FILE = "model.onnx"
THRESHOLD_KEY = "vibrasense.threshold"
DETECTOR_KEY = "vibrasense.detector"


def session_options() -> onnxruntime.SessionOptions:
    """One thread per session: parallelism comes from the service's request threads, as for native models."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxScorer(ModelScorer):
    """A :class:`ModelScorer` whose detector is an ONNX Runtime session (``serving.runtime: onnx``)."""

    explains_cheaply = False

    def __init__(
        self, session: onnxruntime.InferenceSession, spec: FeatureSpec, inputs: ModelInputs, name: str, version: str
    ) -> None:
        metadata = session.get_modelmeta().custom_metadata_map
        if THRESHOLD_KEY not in metadata:
            raise ModelError(
                f"the ONNX model has no {THRESHOLD_KEY} metadata; export it with `vibrasense models export`"
            )
        self.session = session
        self.spec = spec
        self.inputs = inputs
        self.name = name
        self.version = str(version)
        self.threshold = float(metadata[THRESHOLD_KEY])
        self.detector_name = metadata.get(DETECTOR_KEY, "?")
        self._input = session.get_inputs()[0].name

    @classmethod
    def from_directory(cls, directory: Path | str, name: str, version: str) -> OnnxScorer:
        """Load an exported folder (``model.onnx``, ``feature_spec.json``, ``model_inputs.json``)."""
        folder = Path(directory)
        path = folder / ONNX_FILE
        if not path.is_file():
            raise ModelError(f"{folder}: no {ONNX_FILE} here; export the model with `vibrasense models export`")
        spec = current_spec(folder, "export the model again", "retrain and export it again")
        try:
            session = onnxruntime.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors for a bad file
            raise ModelError(f"{path}: not a loadable ONNX model ({error})") from None
        scorer = cls(session, spec, ModelInputs.load(folder), name, version)
        scorer.directory = folder
        scorer.domain = DomainReference.load(folder)
        return scorer

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
        explain: bool = False,
    ) -> Verdict:
        """The verdict on float32 mono samples at ``sample_rate`` Hz of machine ``machine_id`` (no explanation:
        see the module)."""
        inputs, domain_signature = self.inputs_and_signature(samples, float(sample_rate), context)
        feed = inputs[0] if isinstance(inputs, list) else inputs
        (output,) = self.session.run(None, {self._input: feed})
        return self.verdict(float(np.ravel(output)[0]), domain_signature, machine_id=machine_id)
