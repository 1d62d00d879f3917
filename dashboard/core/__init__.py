"""The core every feature stands on: the database (``db``), its schema and migrations,
settings, the reporting period, staff roles (``auth``), the audit trail, input parsing and the
system actors. It imports nothing of the features."""
