"""What the operator decides about backups: when they are due and which have expired."""
