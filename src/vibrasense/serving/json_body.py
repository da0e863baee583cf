"""JSON scoring bodies read in bounded memory: every large ``samples`` array is parsed straight into float32.

pydantic (like ``json.loads``) first holds a tree of every number and then a Python list of them: about 80
bytes a sample, 0.9 GB for a 46 MB body of samples. :func:`extract_samples` scans the body's structure
instead (strings, brackets, keys; never the numbers one by one), parses each flat array under a
``"samples"`` key of :data:`INLINE_BYTES` or more in slices of :data:`SLICE_BYTES` with pydantic_core's JSON
parser into one float32 array (4 bytes a sample), and puts a short placeholder string in its place. The
schemas' ``Samples`` type resolves a placeholder through the validation context (:data:`PARSED_SAMPLES_KEY`),
so pydantic validates only the small envelope, and an array above ``serving.max_samples`` is refused from
its length, before it is parsed. Shorter arrays (a 10-s clip at 16 kHz is about 1.5 MB) stay with pydantic,
which reads them fastest.

What no field of a scoring body holds is refused from the scan, naming the limit: a large array anywhere
else, or more than :data:`MAX_STRUCTURE` keys, strings and brackets in all.
"""

from __future__ import annotations

import re
import secrets

import numpy as np
import pydantic_core
from pydantic_core import PydanticCustomError

from vibrasense.serving.recordings import RecordingTooLarge
from vibrasense.serving.schemas import PARSED_SAMPLES_KEY

__all__ = ["PARSED_SAMPLES_KEY", "ParsedSamples", "extract_samples", "parse_numbers"]
INLINE_BYTES = 2 << 20
"""A samples array shorter than this (~250,000 samples) is left to pydantic: faster, and ~40 MB at most."""
SLICE_BYTES = 1 << 20
"""Bytes of numbers parsed at a time: the Python list of one slice is the parse's only transient (~15 MB)."""
MAX_STRUCTURE = 50_000
"""Keys, strings, brackets, commas and colons outside the samples arrays: a 64-recording batch has ~2,000."""
MAX_OTHER_ARRAY_BYTES = 64 << 10
"""An array elsewhere than under ``samples`` (no field holds one) is left to pydantic only below this."""

_TOKEN = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[\]{}:,]')
_NEXT_NESTED = re.compile(rb'[\[\]{}"]')
_NUMBER_BYTES = b"0123456789eE.+-, \t\r\n"


ParsedSamples = dict[str, "np.ndarray | PydanticCustomError"]
"""Each placeholder's float32 array, or the error its field is refused with where the placeholder is validated."""


def extract_samples(body: bytes | bytearray, max_samples: int) -> tuple[bytes | bytearray, ParsedSamples]:
    """``(body with each samples array replaced by a placeholder, {placeholder: float32 array or problem})``.

    A body that is not valid JSON is returned as it is (with what was extracted so far) for pydantic to name
    the error; the scan only ever shortens it.
    """
    parsed: ParsedSamples = {}
    pieces: list[bytes] = []
    copied_to = 0
    prefix = f"vibrasense-samples:{secrets.token_hex(8)}:"
    containers: list[list[object]] = []  # ["{", current key] or ["[", index]
    expect_key = False
    position = 0
    tokens = 0
    while (token := _TOKEN.search(body, position)) is not None:
        position = token.end()
        tokens += 1
        if tokens > MAX_STRUCTURE:
            raise RecordingTooLarge(
                "body", f"more than {MAX_STRUCTURE:,} keys, strings and brackets; a scoring body holds far fewer"
            )
        mark = body[token.start() : token.start() + 1]
        if mark == b'"':
            if expect_key and containers and containers[-1][0] == "{":
                containers[-1][1] = body[token.start() : token.end()]
                expect_key = False
        elif mark == b"{":
            containers.append(["{", None])
            expect_key = True
        elif mark == b",":
            if containers and containers[-1][0] == "{":
                expect_key = True
            elif containers:
                containers[-1][1] = int(containers[-1][1]) + 1  # type: ignore[call-overload]
        elif mark in (b"}", b"]"):
            if containers:
                containers.pop()
            expect_key = False
        elif mark == b"[":
            nested = _NEXT_NESTED.search(body, position)
            end = nested.start() if nested is not None else len(body)
            flat = nested is not None and nested.group() == b"]"
            under_samples = bool(containers) and containers[-1] == ["{", b'"samples"']
            samples_array = flat and under_samples
            if samples_array and end - position >= INLINE_BYTES:
                placeholder = f"{prefix}{len(parsed)}"
                parsed[placeholder] = parse_numbers(body, position, end, max_samples)
                pieces += [body[copied_to : token.start()], f'"{placeholder}"'.encode()]
                copied_to = position = end + 1
                continue
            if not samples_array and end - position > MAX_OTHER_ARRAY_BYTES:
                where = _path(containers)
                what = "a list of numbers" if under_samples else "a list"
                raise RecordingTooLarge(
                    where or "body",
                    f"{what} of more than {MAX_OTHER_ARRAY_BYTES // 1024} KB where the field takes "
                    + ("only numbers" if under_samples else "no list that long"),
                )
            if flat:
                position = end  # left to pydantic, which reads it fastest or names its error; skip its commas here
            containers.append(["[", 0])
    if not parsed:
        return body, parsed
    pieces.append(body[copied_to:])
    return b"".join(pieces), parsed


def parse_numbers(body: bytes | bytearray, start: int, end: int, max_samples: int) -> np.ndarray | PydanticCustomError:
    """The JSON numbers in ``body[start:end]`` (a flat array's inside) as float32, or why they are refused."""
    if not body[start:end].strip():
        return np.empty(0, dtype=np.float32)
    count = body.count(b",", start, end) + 1
    if count > max_samples:
        return PydanticCustomError(
            "too_many_samples",
            f"{count:,} samples, above serving.max_samples={max_samples:,}; send a shorter clip or a lower rate",
        )
    samples = np.empty(count, dtype=np.float32)
    filled = 0
    cursor = start
    while cursor < end:
        cut = body.find(b",", min(cursor + SLICE_BYTES, end), end)
        cut = end if cut < 0 else cut
        chunk = body[cursor:cut]
        stray = chunk.translate(None, _NUMBER_BYTES)  # true, null, NaN...: pydantic_core would take some of them
        if stray:
            return _not_a_number(chunk, chunk.find(stray[:1]), filled)
        try:
            values = pydantic_core.from_json(b"[" + chunk + b"]", allow_inf_nan=False)
        except ValueError as error:
            column = re.search(r"column (\d+)", str(error))
            return _not_a_number(chunk, max(int(column.group(1)) - 2, 0) if column else 0, filled)
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                samples[filled : filled + len(values)] = np.fromiter(values, dtype=np.float32, count=len(values))
            except OverflowError:
                return PydanticCustomError("not_a_number", "a number is too large even for float64")
        filled += len(values)
        cursor = cut + 1
    return samples


def _not_a_number(chunk: bytes, offset: int, before: int) -> PydanticCustomError:
    index = before + chunk.count(b",", 0, offset)
    start = chunk.rfind(b",", 0, offset) + 1
    stop = chunk.find(b",", offset)
    got = chunk[start : stop if stop >= 0 else len(chunk)].strip()[:40].decode(errors="replace")
    return PydanticCustomError("not_a_number", f"element {index} is not a number (got {got!r})")


def _path(containers: list[list[object]]) -> str:
    """``recordings[3].samples`` from the containers the scan is in."""
    parts = []
    for kind, at in containers:
        if kind == "[":
            parts.append(f"[{at}]")
        elif isinstance(at, bytes):
            try:
                parts.append("." + str(pydantic_core.from_json(at)))
            except ValueError:
                parts.append(".?")
    return "".join(parts).lstrip(".")
