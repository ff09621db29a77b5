"""The operator's own settings, from TASKMANAGER_OPERATOR_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskmanager_operator.api.v1alpha1 import DEFAULT_IMAGE_REPOSITORY

FIELD_MANAGER = "taskmanager-operator"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKMANAGER_OPERATOR_", frozen=True)

    image_repository: str = Field(
        default=DEFAULT_IMAGE_REPOSITORY,
        min_length=1,
        description="API image repository; spec.version is its tag unless spec.image is set.",
    )
    resync_seconds: float = Field(
        default=300, gt=0, description="Every TaskManager is reconciled at least this often."
    )
    retry_initial_seconds: float = Field(default=2, gt=0)
    retry_max_seconds: float = Field(default=60, gt=0)
    progress_poll_seconds: float = Field(
        default=10,
        gt=0,
        description="How soon a TaskManager that is still converging is looked at again.",
    )
    redis_probe_cache_seconds: float = Field(
        default=60,
        ge=0,
        description="How long an external Redis's maxmemory-policy is remembered before it is "
        "read again.",
    )
    selection_recheck_seconds: float = Field(
        default=60,
        gt=0,
        description="How soon a TaskManager whose monitoring objects no Prometheus selects, or "
        "whose HTTPRoute's Gateway is missing, is looked at again (Prometheus objects and "
        "Gateways may live in namespaces the operator does not watch).",
    )
    workers: int = Field(default=4, ge=1, le=64, description="Reconciles that run at once.")
    metrics_port: int = Field(default=8081, ge=0, le=65535, description="0 turns metrics off.")
    leader_election_namespace: str | None = Field(
        default=None,
        description="Namespace of the Lease that elects one acting replica; unset: always act.",
    )
    # Whole seconds: the Lease stores its duration as an integer.
    lease_seconds: int = Field(default=15, gt=1)
    renew_seconds: int = Field(default=10, gt=1)
    retry_seconds: float = Field(default=2, gt=0)
