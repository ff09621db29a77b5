"""The task-manager API service that every TaskManager runs."""

__version__ = "0.1.0"
