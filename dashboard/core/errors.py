"""The errors the product raises on purpose. Their message is for people: it says what is
wrong and, where there is one, the fix. It never holds a stack trace or SQL.

Refused: the user's input or the data's state says no; nothing was written. Three kinds,
which the API answers by class (``api/problems.py``) and the pages show as they are
(``dashboard.ui.components.run_write``):

- ``Invalid``: the input breaks a rule (422);
- ``NotFound``: an id names nothing the caller may see (404);
- ``Conflict``: the data's state forbids it now: taken, already exists, a step the state
  does not allow (409); ``ChangedMeanwhile`` when the caller's view is out of date.

A feature keeps a subclass only where it carries something: data (``row_errors``,
``reason``, ``code``) or the API's code for the feature. They subclass ValueError, so an
``except ValueError`` still catches them.

``PermissionDenied``: the actor's role may not do this (403).

For the operator, not the user: ``ConfigError`` (a setting is present but unusable) and
``DatabaseUnavailable`` (the database cannot be reached or opened).
"""

from __future__ import annotations


class Refused(ValueError):
    """The input or the data's state says no; the message says why. Nothing was written."""


class Invalid(Refused):
    """The input breaks a rule; the message says which."""


class NotFound(Refused):
    """An id names nothing (or nothing the caller may see)."""


class Conflict(Refused):
    """The data's state does not allow this now."""


class ChangedMeanwhile(Conflict):
    """The edit was made from an out-of-date view: someone else changed the data since it
    loaded. The message says who and when (``audit.unchanged_since_seen``); nothing was saved."""


class PermissionDenied(PermissionError):
    """The actor's role may not do this; the message says which roles may."""


class ConfigError(ValueError):
    """A setting is present but unusable; the message names it."""


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened. ``str()`` is one line for people."""
