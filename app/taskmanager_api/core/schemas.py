"""What every domain's request bodies share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    # Unknown fields are errors, so nobody can smuggle in id, role or created_by.
    model_config = ConfigDict(extra="forbid")
