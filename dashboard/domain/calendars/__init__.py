"""Mechanic calendars: working hours, bookable slots, prices and booking checks (``slots``),
and the managers' edits to hours, multipliers and base prices (``edits``)."""
