"""OpenAPI request bodies of the scoring endpoints, which accept JSON or multipart/form-data.

FastAPI cannot declare one body with two media types from parameters, so the endpoints read the raw
request and these fragments document both forms (and let schemathesis generate both).
"""

from __future__ import annotations

from typing import Any

from vibrasense.config import Settings
from vibrasense.serving.schemas import ScoreRequest

_FORM_FIELDS: dict[str, Any] = {
    "machine_id": {"type": "string", "description": "Machine recorded."},
    "bearing": {"type": "string", "description": "Bearing preset: adds a defect diagnosis."},
    "shaft_hz": {"type": "number", "description": "Shaft speed for the diagnosis (Hz)."},
    "channel": {"type": "integer", "description": "Channel of a multi-channel file (default 0)."},
}


def _request_schema(settings: Settings) -> dict[str, Any]:
    """``ScoreRequest`` inline, with the sample-rate range of these settings."""
    schema = ScoreRequest.model_json_schema()
    schema.pop("title", None)
    schema["properties"]["sample_rate"] |= {
        "minimum": settings.serving.min_sample_rate,
        "maximum": settings.serving.max_sample_rate,
    }
    return schema


def score_body(settings: Settings) -> dict[str, Any]:
    """``POST /v1/score``: a JSON ``ScoreRequest`` or a multipart upload with a ``file``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _request_schema(settings)},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}, **_FORM_FIELDS},
                        "required": ["file"],
                    }
                },
            },
        }
    }


def batch_body(settings: Settings, max_items: int) -> dict[str, Any]:
    """``POST /v1/score/batch``: JSON ``{"recordings": [...]}`` or multipart ``files`` (repeated)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "recordings": {
                                "type": "array",
                                "items": _request_schema(settings),
                                "minItems": 1,
                                "maxItems": max_items,
                            }
                        },
                        "required": ["recordings"],
                        "additionalProperties": False,
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                            **_FORM_FIELDS,
                        },
                        "required": ["files"],
                    }
                },
            },
        }
    }
