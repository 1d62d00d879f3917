"""Keyboard flow through a list of cards: J/K move a visible focus, letters act on the focused card.

Streamlit's buttons take a ``shortcut`` (1.67), which the browser ignores while someone types in
a text field; so the keys are plain buttons: ``focus_buttons`` draws "Next" (J) and "Previous"
(K), which move the focus kept in ``st.session_state``; the page gives the focused card's own
buttons their shortcut (P, H, ...) and nobody else's, and ``focus_ring`` outlines that card
and scrolls it into view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

_RING = """<style>
.st-key-{key} {{ outline: 3px solid #2563EB; outline-offset: 3px; border-radius: 0.6rem; scroll-margin-top: 4rem; }}
</style>"""
_SCROLL = """<script>
(() => {{
  const card = document.querySelector(".st-key-{key}");
  if (card) card.scrollIntoView({{block: "start", behavior: "instant"}});
}})();
</script>"""


def focused(state_key: str, ids: Sequence[str]) -> str | None:
    """The id in focus among ``ids`` (the first when the kept one is not shown), or None."""
    current = st.session_state.get(state_key)
    if current in ids:
        return current
    return ids[0] if ids else None


def move_focus(state_key: str, ids: Sequence[str], step: int, past_end: Callable[[int], bool] | None = None) -> None:
    """Button callback: focus the card ``step`` places on; past either end, ``past_end(step)``
    if given (e.g. turn the page; True if it did: the focus starts again), else stay."""
    if not ids:
        return
    position = list(ids).index(focused(state_key, ids)) + step
    st.session_state[f"{state_key}_moved"] = True
    if 0 <= position < len(ids):
        st.session_state[state_key] = ids[position]
    elif past_end is not None and past_end(step):
        st.session_state.pop(state_key, None)


def focus_buttons(state_key: str, ids: Sequence[str], noun: str, past_end: Callable[[int], bool] | None = None) -> None:
    """Buttons "Previous <noun>" (K) and "Next <noun>" (J) that move the focus through ``ids``."""
    st.button(
        f"Previous {noun}",
        key=f"{state_key}_previous",
        icon=":material/keyboard_arrow_up:",
        type="tertiary",
        shortcut="K",
        on_click=move_focus,
        args=(state_key, ids, -1, past_end),
    )
    st.button(
        f"Next {noun}",
        key=f"{state_key}_next",
        icon=":material/keyboard_arrow_down:",
        type="tertiary",
        shortcut="J",
        on_click=move_focus,
        args=(state_key, ids, 1, past_end),
    )


def focus_ring(container_key: str, state_key: str) -> None:
    """Outline the container keyed ``container_key`` (a key of ours: letters, digits, ``-_``)
    and, when J/K just moved the focus kept in ``state_key``, bring it into view."""
    if not container_key.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"not a container key: {container_key!r}")
    st.html(_RING.format(key=container_key))
    if st.session_state.pop(f"{state_key}_moved", False):
        st.html(_SCROLL.format(key=container_key), unsafe_allow_javascript=True)
