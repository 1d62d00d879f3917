"""Background jobs: ``python -m jobs emails --once`` or ``--loop [--interval 60]``."""
