"""The durable record of ended sessions and spent refresh tokens.

Redis holds the same revocations as the fast path of every authenticated request, but Redis may
restart empty, be flushed or evict: these tables are what the API trusts and reloads Redis from.
Rows are kept until the tokens they concern expire, then deleted by later writes.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from taskmanager_api.core.db import Base

# Token ids and family ids are uuid4 hex strings (32 characters); the margin is for older tokens.
TOKEN_ID_LENGTH = 64


class RevokedFamily(Base):
    """A session (token family) that ended: logout, or a refresh token presented twice."""

    __tablename__ = "revoked_token_families"

    family: Mapped[str] = mapped_column(sa.String(TOKEN_ID_LENGTH), primary_key=True)
    # When the family's last refresh token expires: after that the row protects nothing.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SpentRefreshToken(Base):
    """A refresh token already exchanged once: presenting it again ends its session."""

    __tablename__ = "spent_refresh_tokens"

    token_id: Mapped[str] = mapped_column(sa.String(TOKEN_ID_LENGTH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
