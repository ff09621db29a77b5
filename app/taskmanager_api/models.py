"""Every table, imported in one place so Alembic and the tests see the whole metadata."""

from taskmanager_api.auth.models import RevokedFamily, SpentRefreshToken
from taskmanager_api.comments.models import Comment
from taskmanager_api.core.db import Base
from taskmanager_api.tasks.models import Task, TaskTag
from taskmanager_api.users.models import Role, User

__all__ = [
    "Base",
    "Comment",
    "RevokedFamily",
    "Role",
    "SpentRefreshToken",
    "Task",
    "TaskTag",
    "User",
]
