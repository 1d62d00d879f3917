"""Benchmarks: the page queries (``queries``, with their ``cases``), the platform API (``api``) and the email
job (``emails``)."""
