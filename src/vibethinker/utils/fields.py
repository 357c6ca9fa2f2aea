"""Field metadata shared by the settings models (pydantic only, so recipes validate without torch)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


def resumable(default: Any = ..., **kwargs: Any) -> Any:
    """A ``Field`` whose value may change when a run resumes from its checkpoint (logging, devices, generation
    batch sizes): changing it does not change the computation. The trainers compare every other setting with the
    checkpoint's and refuse to resume on a difference."""
    return Field(default, json_schema_extra={"resumable": True}, **kwargs)


def resumable_fields(model: type[BaseModel]) -> set[str]:
    """Names of the fields of ``model`` declared with :func:`resumable`."""
    return {name for name, info in model.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("resumable")}
