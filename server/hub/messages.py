"""Client → server WebSocket messages of the hub itself (media ones live in ``signaling``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Hello(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["hello"]
    token: str = Field(min_length=1, max_length=8192)


class Ping(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["ping"]


def error(code: str, detail: str) -> dict[str, str]:
    return {"type": "error", "code": code, "detail": detail}
