"""The jobs' entry points: ``python -m dashboard emails|intake --once`` or ``--loop`` (the loops
live here: ``jobs.emails``, ``jobs.intake``); ``python -m dashboard funnel`` and ``upsells``
call the domain directly. One run of each is the domain's (``dashboard.domain``)."""
