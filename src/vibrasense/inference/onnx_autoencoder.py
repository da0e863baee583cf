"""The log-mel autoencoders as ONNX graphs: a clip's log-mel spectrogram in, its anomaly score out.

The graph holds everything :meth:`AutoencoderDetector.score_one` does to a spectrogram (frames, n_mels):
the windows of :func:`vibrasense.models.windows.window_offsets` (every ``score_hop`` frames, plus one
aligned to the end; a clip shorter than a window edge-padded, as :func:`take_window` does), the per-band
standardisation, the torch module on every window at once, and the detector's aggregation of the residuals
over time (``band-offset-spread``, ``band-offset``, ``band-spread`` or ``mean``, see
:mod:`vibrasense.models.autoencoder`).
It is exported from torch with ``torch.onnx.export`` (the dynamo exporter), the number of frames dynamic.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import torch
from torch import nn

from vibrasense.models.autoencoder import MIN_REFERENCE_SCORE, MIN_RESIDUAL_VARIANCE, AutoencoderDetector
from vibrasense.models.cnn_ae.detector import CnnAEDetector

INPUT = "logmel"
OUTPUT = "score"
EXAMPLE_FRAMES = 313  # a 10-s 16 kHz clip at hop 512: only traces the graph, any length is accepted


class _ClipScore(nn.Module):
    """The score of one spectrogram, as ``score_one`` computes it, in torch operations that export."""

    def __init__(self, detector: AutoencoderDetector) -> None:
        super().__init__()
        self.module = detector.module_
        self.window = int(detector.window)
        self.hop = int(detector.score_hop)
        self.image = isinstance(detector, CnnAEDetector)  # (batch, 1, n_mels, frames) rather than flat vectors
        self.register_buffer("mean", torch.as_tensor(np.asarray(detector.mean_, dtype=np.float32)))
        self.register_buffer("scale", torch.as_tensor(1.0 / np.asarray(detector.std_, dtype=np.float32)))
        self.aggregation = detector.score_aggregation
        if self.aggregation != "mean":
            for name in ("offset_mean", "offset_std", "spread_mean", "spread_std"):
                if hasattr(detector, f"{name}_"):  # no spread statistics in a folder saved before band-spread
                    self.register_buffer(name, torch.as_tensor(np.asarray(getattr(detector, f"{name}_"), np.float32)))
        if self.aggregation == "band-offset-spread":
            self.offset_reference = max(detector.offset_reference_, MIN_REFERENCE_SCORE)
            self.spread_reference = max(detector.spread_reference_, MIN_REFERENCE_SCORE)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        frames = spectrogram.shape[0]
        last = torch.sym_max(frames - self.window, 0)  # the end-aligned offset (0 for a short clip)
        count = (last + self.hop - 1) // self.hop + 1  # offsets every hop up to `last`, and `last` itself
        offsets = torch.clamp(torch.arange(count) * self.hop, max=last)
        rows = torch.clamp(offsets[:, None] + torch.arange(self.window)[None, :], max=frames - 1)  # edge padding
        windows = (spectrogram[rows] - self.mean) * self.scale  # (windows, window, n_mels)
        batch = windows.transpose(1, 2)[:, None] if self.image else windows.reshape(windows.shape[0], -1)
        residual = self.module(batch) - batch
        if self.aggregation == "mean":
            return (residual**2).flatten(1).mean(dim=1).mean()
        # each band's residuals over windows and frames, as (windows, 1, n_mels, window) images
        bands = residual if self.image else residual.reshape(windows.shape).transpose(1, 2)[:, None]
        offset = bands.mean(dim=(0, 1, 3))
        offset_score = (((offset - self.offset_mean) / self.offset_std) ** 2).mean()
        if self.aggregation == "band-offset":
            return offset_score
        # two passes: in single precision the mean square less the squared mean cancels for steady residuals
        deviation = bands - offset[None, None, :, None]
        variance = torch.clamp((deviation * deviation).mean(dim=(0, 1, 3)), min=MIN_RESIDUAL_VARIANCE)
        spread_score = (((0.5 * torch.log(variance) - self.spread_mean) / self.spread_std) ** 2).mean()
        if self.aggregation == "band-spread":
            return spread_score
        return torch.maximum(offset_score / self.offset_reference, spread_score / self.spread_reference)


def autoencoder_to_onnx(detector: AutoencoderDetector) -> onnx.ModelProto:
    """The ONNX graph of a fitted autoencoder: ``logmel`` (frames, n_mels) float32 -> ``score`` float32."""
    wrapper = _ClipScore(detector).eval()
    example = torch.zeros(EXAMPLE_FRAMES, detector.n_mels_)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on torchvision and deprecated paths
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={"spectrogram": {0: torch.export.Dim("frames", min=1)}},
            verbose=False,
        )
    program.optimize()
    return program.model_proto
