"""Benchmarks: the registered queries (``queries``), the platform API (``api``) and the email
job (``emails``)."""
