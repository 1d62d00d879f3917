"""The conversion funnel: recording customer interactions and turning them into journeys
(``interactions``), and the daily roll-up that serves the tracked funnels (``rollups``)."""
