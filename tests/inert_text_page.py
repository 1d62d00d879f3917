"""A page of hostile user text through the shared UI helpers, for tests/test_inert_text.py:
``streamlit run tests/inert_text_page.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import plotly.express as px  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard.ui import components as ui  # noqa: E402
from tests.factories import HOSTILE  # noqa: E402

for text in HOSTILE:
    st.markdown(f"Customer wrote: {ui.escape_markdown(text)}")
ui.status_badge(HOSTILE[0])
ui.specialty_badges(HOSTILE)
frame = pd.DataFrame({"group": HOSTILE, "conversion": [0.1 * (n + 1) for n in range(len(HOSTILE))]})
ui.chart(
    px.bar(frame, x="conversion", y="group", orientation="h", color="group"),
    title="By vehicle make",
    x_title="Conversion",
    y_title="Vehicle make",
)
