"""Milestone emails: templates (``render``), the outbox (``outbox``), Resend (``sender``),
the job (``worker``) and its settings (``settings``). See ``python -m dashboard emails --help``."""
