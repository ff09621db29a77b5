"""Backups of the app's database: `python -m taskmanager_api backup create|restore|verify|delete`.

A backup is a directory (`file:///...` on a mounted volume, or `s3://bucket/prefix`) holding a
`pg_dump --format=custom` of the database and, written last as the commit marker, a manifest
(manifest.py) with the dump's checksum and what the database held when it was taken. storage.py
moves files to and from a location (s3.py for buckets), postgres.py drives the PostgreSQL client
tools, database.py runs the backup's own queries, engine.py puts the operations together, and
cli.py turns each outcome into one JSON line. None of them imports the web app, SQLAlchemy or (but
to migrate a restored database) Alembic: start-up is most of what a small backup costs.
"""
