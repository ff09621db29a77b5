"""Loaded by the schemathesis CLI (SCHEMATHESIS_HOOKS): logs in, and again after a 401.

A fuzzer that calls /auth/logout revokes its own session; the provider's default retry_on=[401]
fetches a fresh token so that the rest of the run stays authenticated.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from schemathesis import Case
from schemathesis.auths import AuthContext
from schemathesis.schemas import APIOperation


@schemathesis.auth()
class FreshLogin:
    def get(self, case: Case[APIOperation[Any, Any, Any, Any]], context: AuthContext) -> str:
        del case, context
        response = httpx.post(
            f"{os.environ['FUZZ_API_URL']}/api/v1/auth/login",
            json={"email": os.environ["FUZZ_EMAIL"], "password": os.environ["FUZZ_PASSWORD"]},
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def set(
        self, case: Case[APIOperation[Any, Any, Any, Any]], data: str, context: AuthContext
    ) -> None:
        del context
        case.headers["Authorization"] = f"Bearer {data}"
