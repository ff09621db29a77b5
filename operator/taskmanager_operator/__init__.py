"""The taskmanager operator: reconciles TaskManager resources into a running task-manager API."""

__version__ = "0.1.0"
