"""Readers for every recording format vibrasense ingests; each returns one channel as a float32 ``Signal``.

Formats: WAV/FLAC/OGG (soundfile: 16/24/32-bit integer and float, any channel count), IMS bearing ASCII
snapshots (tab-separated, 4 or 8 channels, 20 kHz), FEMTO/PRONOSTIA ``acc_NNNNN.csv`` (comma or semicolon;
hour, minute, second, microsecond, horizontal, vertical; 25.6 kHz), CWRU and other MATLAB ``.mat`` files,
plain CSV and NPY. Files may be members of zip or tar archives (see ``archives``).
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import scipy.io
import soundfile as sf

from vibrasense.errors import InputError
from vibrasense.signals.archives import SEPARATOR, read_bytes, split_source
from vibrasense.signals.records import Format, RecordingRef, Signal

IMS_RATE = 20_000.0
FEMTO_RATE = 25_600.0
CWRU_12K = 12_000.0
CWRU_48K = 48_000.0
# The CWRU Bearing Data Center's record numbers (first, last) and the rate each was sampled at (its download
# pages): the normal baseline (97-100) and the "48k Drive End" faults at 48 kHz; the "12k Drive End" faults
# (3001-3008: 0.028") and every fan-end record (270-318) at 12 kHz. 157 and 216 do not exist.
CWRU_48K_SPANS = ((97, 100), (109, 112), (122, 125), (135, 138), (148, 151), (161, 164), (174, 177), (189, 192),
                  (201, 204), (213, 215), (217, 217), (226, 229), (238, 241), (250, 253), (262, 265))  # fmt: skip
CWRU_12K_SPANS = ((105, 108), (118, 121), (130, 133), (144, 147), (156, 156), (158, 160), (169, 172), (185, 188),
                  (197, 200), (209, 212), (222, 225), (234, 237), (246, 249), (258, 261), (270, 318),
                  (3001, 3008))  # fmt: skip
CWRU_48K_RECORDS = frozenset(n for first, last in CWRU_48K_SPANS for n in range(first, last + 1))
CWRU_12K_RECORDS = frozenset(n for first, last in CWRU_12K_SPANS for n in range(first, last + 1))
CWRU_RATE_FOLDER = re.compile(r"^(12|48)k_(drive|fan)_end(_bearing)?(_fault)?(_data)?$", re.IGNORECASE)
CWRU_NORMAL_FOLDER = re.compile(r"^normal(_baseline)?(_data)?$", re.IGNORECASE)
CWRU_SIGNAL = re.compile(r"^X(\d+)_(DE|FE|BA)_time$")
CWRU_RPM = re.compile(r"^X\d+RPM$")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
IMS_NAME = re.compile(r"^\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}$")
FEMTO_NAME = re.compile(r"^acc_\d+\.csv$", re.IGNORECASE)
CWRU_CHANNELS = ("DE", "FE", "BA")
FEMTO_CHANNELS = ("horizontal", "vertical")


def detect_format(name: str) -> Format:
    """The format of a file from its name; raises InputError for names no reader knows."""
    base = Path(name).name
    lower = base.lower()
    if lower.endswith(AUDIO_SUFFIXES):
        return "wav"
    if FEMTO_NAME.match(base):
        return "femto"
    if IMS_NAME.match(base):
        return "ims"
    if lower.endswith(".mat"):
        return "cwru"
    if lower.endswith((".csv", ".txt")):
        return "csv"
    if lower.endswith(".npy"):
        return "npy"
    raise InputError(
        name, "unsupported file type (expected .wav/.flac/.ogg, IMS snapshot, acc_*.csv, .mat, .csv, .npy)"
    )


def read_path(path: Path | str, channel: int | str | None = None, sample_rate: float | None = None) -> Signal:
    """Read one file (or ``archive::member``) whose format is told by its name."""
    source = str(path)
    file_path, member = split_source(source)
    if member is None and not file_path.exists():
        raise InputError(source, "file does not exist")
    fmt = detect_format(member or file_path.name)
    return _READERS[fmt](source, channel, sample_rate)


def read_signal(ref: RecordingRef, channel: int | str | None = None) -> Signal:
    """Read the recording a layout found, at its native sample rate."""
    chosen = ref.channel if channel is None else channel
    return _READERS[ref.format](ref.source, chosen, ref.sample_rate_hint)


def _checked(source: str, samples: np.ndarray, rate: float, channels: int) -> Signal:
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise InputError(source, "recording is empty (no samples)")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise InputError(source, f"{bad} samples are NaN or inf")
    if not np.isfinite(rate) or rate <= 0:
        raise InputError(source, f"invalid sample rate {rate!r}")
    return Signal(samples=samples, sample_rate=float(rate), channels=channels)


def _column(source: str, table: np.ndarray, channel: int | str | None, names: tuple[str, ...] = ()) -> np.ndarray:
    """One column of a (samples, channels) table, chosen by index or by name."""
    count = table.shape[1]
    if channel is None:
        index = 0
    elif isinstance(channel, str) and not channel.lstrip("-").isdigit():
        upper = [n.upper() for n in names]
        if channel.upper() not in upper:
            raise InputError(source, f"channel {channel!r} does not exist; channels are {list(names) or count}")
        index = upper.index(channel.upper())
    else:
        index = int(channel)
    if not 0 <= index < count:
        raise InputError(source, f"channel {channel} does not exist; the file has {count} channel(s): 0..{count - 1}")
    return table[:, index]


def _read_audio(source: str, channel: int | str | None, sample_rate: float | None) -> Signal:
    data = read_bytes(source)
    if not data:
        raise InputError(source, "file is empty (0 bytes)")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as error:
        raise InputError(source, f"not a readable audio file ({error})") from None
    check_wav_complete(source, data, len(samples), rate)
    return _checked(source, _column(source, samples, channel), rate, samples.shape[1])


def _riff_chunks(header: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(chunk id, declared size, offset of its body)`` of each chunk of a RIFF/WAVE header, in order; nothing
    for another format."""
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= len(header):
        size = int.from_bytes(header[offset + 4 : offset + 8], "little")
        yield header[offset : offset + 4], size, offset + 8
        offset += 8 + size + (size & 1)


def wav_declared_frames(header: bytes) -> int | None:
    """Frames the ``data`` chunk of a RIFF/WAVE header declares; ``None`` for another format or a streamed length.

    libsndfile trusts the file's size over the header: a WAV cut short reads as a shorter clip without a word,
    so what the header promised is read here (``header``: the file's first bytes, 64 KiB is plenty).
    """
    block_align = 0
    for chunk, size, body in _riff_chunks(header):
        if chunk == b"fmt " and body + 14 <= len(header):
            block_align = int.from_bytes(header[body + 12 : body + 14], "little")
        elif chunk == b"data":
            streamed = size in (0, 0xFFFFFFFF)  # a writer that could not seek back to fill in the length
            return None if streamed or not block_align else size // block_align
    return None


@dataclass(frozen=True)
class Pcm16Wav:
    """Where the samples of a 16-bit PCM RIFF/WAVE file lie and what they are."""

    sample_rate: int
    channels: int
    frames: int
    data_offset: int


_PCM_FORMAT, _EXTENSIBLE_FORMAT = 1, 0xFFFE


def pcm16_wav_layout(header: bytes) -> Pcm16Wav | None:
    """The layout of a plain 16-bit PCM WAV (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format) from its
    first bytes; ``None`` for anything else (another format or sample width, a streamed length, a ``data`` chunk
    beyond ``header``), which a general decoder must read."""
    fmt: tuple[int, int, int, int] | None = None
    for chunk, size, body in _riff_chunks(header):
        if chunk == b"fmt " and body + 16 <= len(header):
            tag, channels, rate = struct.unpack_from("<HHI", header, body)
            block_align, bits = struct.unpack_from("<HH", header, body + 12)
            if tag == _EXTENSIBLE_FORMAT and size >= 40 and body + 26 <= len(header):
                tag = struct.unpack_from("<H", header, body + 24)[0]  # the sub-format GUID's leading code
            fmt = (tag, channels, rate, bits if block_align == 2 * channels else 0)
        elif chunk == b"data":
            if fmt is None or size in (0, 0xFFFFFFFF):
                return None
            tag, channels, rate, bits = fmt
            if tag != _PCM_FORMAT or bits != 16 or channels < 1 or rate < 1:
                return None
            return Pcm16Wav(rate, channels, size // (2 * channels), body)
    return None


def check_wav_complete(source: str, header: bytes, frames: int, sample_rate: float) -> None:
    """Refuse a WAV holding fewer frames than its header declares (a copy or upload cut short)."""
    declared = wav_declared_frames(header[:65536])
    if declared is not None and frames < declared:
        raise InputError(
            source,
            f"truncated WAV: the header declares {declared} frames ({declared / sample_rate:.2f} s) but the file holds "
            f"{frames} ({frames / sample_rate:.2f} s); copy or send the whole file",
        )


def _read_ims(source: str, channel: int | str | None, sample_rate: float | None) -> Signal:
    table = _read_table(source, sep=r"\s+")
    if table.shape[1] not in (4, 8):
        raise InputError(source, f"an IMS snapshot has 4 or 8 channels, this one has {table.shape[1]}")
    return _checked(source, _column(source, table, channel), sample_rate or IMS_RATE, table.shape[1])


def _read_femto(source: str, channel: int | str | None, sample_rate: float | None) -> Signal:
    data = read_bytes(source)
    first_line = data[:200].split(b"\n", 1)[0]
    sep = ";" if first_line.count(b";") > first_line.count(b",") else ","
    table = _read_table(source, sep=sep, data=data)
    if table.shape[1] != 6:
        raise InputError(
            source,
            f"a FEMTO snapshot has 6 columns (h, min, s, µs, horizontal, vertical), found {table.shape[1]}",
        )
    return _checked(source, _column(source, table[:, 4:], channel, FEMTO_CHANNELS), sample_rate or FEMTO_RATE, 2)


def _read_table(source: str, sep: str, data: bytes | None = None) -> np.ndarray:
    data = read_bytes(source) if data is None else data
    if not data.strip():
        raise InputError(source, "file is empty")
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, header=None, engine="c" if len(sep) == 1 else "python")
        return frame.to_numpy(dtype=np.float64)
    except (ValueError, pd.errors.ParserError) as error:
        raise InputError(source, f"not a numeric table ({str(error).splitlines()[0]})") from None


def _load_mat(source: str) -> dict[str, Any]:
    try:
        return scipy.io.loadmat(io.BytesIO(read_bytes(source)))
    except (ValueError, TypeError, OSError, NotImplementedError, IndexError, KeyError) as error:
        raise InputError(source, f"unreadable .mat file ({error})") from None


def _read_mat(source: str, channel: int | str | None, sample_rate: float | None) -> Signal:
    variables = _load_mat(source)
    signals = {
        name.rsplit("_", 2)[-2].upper(): np.asarray(value, dtype=np.float64).ravel()
        for name, value in variables.items()
        if CWRU_SIGNAL.match(name)
    }
    if signals:
        names = tuple(c for c in CWRU_CHANNELS if c in signals)
        wanted = "DE" if channel is None else channel
        if isinstance(wanted, int):
            if not 0 <= wanted < len(names):
                raise InputError(source, f"channel {wanted} does not exist; channels are {list(names)}")
            wanted = names[wanted]
        if str(wanted).upper() not in signals:
            raise InputError(source, f"channel {wanted!r} does not exist; channels are {list(names)}")
        rate = sample_rate or cwru_sample_rate(source, variables)
        if rate is None:
            raise InputError(
                source,
                "the rate of a CWRU recording is documented by its record number (97-100, 105-318, 3001-3008) or "
                "its folder (12k_Drive_End_Bearing_Fault_Data, 48k_..., Normal); this file has neither: give the "
                "sample rate or keep the file under the data set's folder",
            )
        return _checked(source, signals[str(wanted).upper()], rate, len(names))
    arrays = {k: v for k, v in variables.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
    numeric = {k: v for k, v in arrays.items() if v.dtype.kind in "fiu" and v.size > 1}
    if len(numeric) != 1:
        raise InputError(
            source, f"expected X<nnn>_DE_time/_FE_time/_BA_time or one numeric array, found {sorted(arrays)}"
        )
    if sample_rate is None:
        raise InputError(source, "the .mat file does not say its sample rate; give it (sample_rate)")
    table = np.atleast_2d(next(iter(numeric.values())))
    table = table.T if table.shape[0] < table.shape[1] else table
    return _checked(source, _column(source, table, channel), sample_rate, table.shape[1])


def cwru_sample_rate(source: str, variables: Iterable[str] = ()) -> float | None:
    """The rate a CWRU recording was sampled at, as the data set documents it; None where nothing says.

    CWRU files do not store their rate. The record number says it (the file name's leading digits, else the
    number in its ``X<nnn>_DE_time`` variable, looked up in the data center's catalogue); else the nearest
    folder named as the data set names them (``12k_Drive_End_Bearing_Fault_Data``, ``48k_Drive_End_...``,
    ``12k_Fan_End_...``), else a file directly in ``Normal`` / ``Normal_Baseline`` (48 kHz). A word elsewhere in
    the path (a parent folder called ``abnormal_tests`` or ``normal``) says nothing.
    """
    path = PurePosixPath(source.replace(SEPARATOR, "/").replace("\\", "/"))
    leading = re.match(r"\d+", path.stem)
    signals = (CWRU_SIGNAL.match(name) for name in variables)
    numbers = [int(leading.group()) if leading else None, *(int(m.group(1)) for m in signals if m)]
    for number in numbers:
        if number in CWRU_48K_RECORDS:
            return CWRU_48K
        if number in CWRU_12K_RECORDS:
            return CWRU_12K
    for folder in reversed(path.parts[:-1]):
        named = CWRU_RATE_FOLDER.match(folder)
        if named:
            return CWRU_48K if named.group(1) == "48" else CWRU_12K
    return CWRU_48K if CWRU_NORMAL_FOLDER.match(path.parent.name) else None


def recording_shaft_hz(ref: RecordingRef) -> float | None:
    """The shaft speed a recording's file states (CWRU ``.mat``: its ``X<nnn>RPM`` variable), in Hz; else None."""
    if ref.format != "cwru":
        return None
    variables = _load_mat(ref.source)
    speeds = [np.asarray(v, dtype=np.float64).ravel() for k, v in variables.items() if CWRU_RPM.match(k)]
    rpm = float(speeds[0][0]) if speeds and speeds[0].size else math.nan
    return rpm / 60.0 if math.isfinite(rpm) and rpm > 0 else None


def _read_csv(source: str, channel: int | str | None, sample_rate: float | None) -> Signal:
    if sample_rate is None:
        raise InputError(source, "a plain CSV does not say its sample rate; give it (sample_rate)")
    table = _read_table(source, sep=",")
    return _checked(source, _column(source, table, channel), sample_rate, table.shape[1])


def _read_npy(source: str, channel: int | str | None, sample_rate: float | None) -> Signal:
    if sample_rate is None:
        raise InputError(source, "a .npy array does not say its sample rate; give it (sample_rate)")
    try:
        array = np.load(io.BytesIO(read_bytes(source)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(source, f"not a readable .npy array ({error})") from None
    if array.ndim not in (1, 2) or array.dtype.kind not in "fiu":
        raise InputError(source, f"expected a 1-D or 2-D numeric array, got {array.ndim}-D {array.dtype}")
    table = array.reshape(-1, 1) if array.ndim == 1 else (array.T if array.shape[0] < array.shape[1] else array)
    return _checked(source, _column(source, table, channel), sample_rate, table.shape[1])


_READERS = {
    "wav": _read_audio,
    "ims": _read_ims,
    "femto": _read_femto,
    "cwru": _read_mat,
    "csv": _read_csv,
    "npy": _read_npy,
}
