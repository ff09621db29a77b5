"""Cross-cutting pieces every domain uses: settings, database, Redis, security, errors, logging."""
