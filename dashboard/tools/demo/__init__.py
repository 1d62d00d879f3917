"""Deterministic demo data: ``python -m dashboard demo --scale N [--seed S] [--database URL] [--replace]``.

Scale 1 is about 5,000 customers, 60 mechanics and 200,000 CRM interactions; customers and
their activity grow linearly with the scale, mechanics more slowly (about 1,650 at scale 100).

Time model: the demo's "now" is midnight UTC at the start of ``anchor`` (default: today, UTC).
History covers the 180 days before it; booked sessions reach up to 14 days after it. The same
seed and anchor give the same rows, ids included, on both backends.

Generation is vectorised (numpy + Arrow compute) in chunks of customers, each chunk with its
own generator seeded from (seed, chunk), so memory stays flat at any scale. A chunk holds a
customer's whole journey: intake requests, sessions, follow-up requests, files, extensions,
reviews, upsells, CRM interactions and emails. Mechanics, their weekly slots and days off
come first. Sessions are booked into free starts an hour apart, so no two sessions of a
mechanic clash with the app's session length and buffer (``calendars.slots.SlotRules``); a
request that no mechanic can take soon enough gets no session. Prices are the app's
(``calendars.slots.price_cents``). Follow-ups go through the app's lifecycle
(``dashboard.domain.followups``), and the email outbox holds the emails due in the last two hours
as pending work for the email job.

Loading is one transaction: PostgreSQL through ``COPY ... FROM STDIN (FORMAT csv, FREEZE)``
with the tables' keys, indexes and foreign keys dropped during the load and rebuilt after it
(faster than maintaining them row by row); DuckDB through ``INSERT ... SELECT`` from Arrow
relations, with its memory capped for the load. The next chunk is generated in a thread while
the current one loads.

Modules: ``vocabulary`` (names, texts, weights, staff and prices), ``arrays`` (vectorised
helpers), ``plan`` (sizes and time window), ``mechanics`` (mechanics and their bookable
timeline), ``sessions`` (customers, requests, sessions, follow-ups), ``reviews``, ``upsells``,
``interactions`` (the CRM trail), ``emails`` (the outbox), ``chunks`` (a chunk of customers'
rows, one chunk ahead), ``load`` (the database: ``generate``, ``load_if_empty``, ``has_data``)
and ``command`` (the ``demo`` command's arguments and run).
"""
