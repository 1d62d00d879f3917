"""Pitwall: the operations console of a remote-mechanic marketplace."""
