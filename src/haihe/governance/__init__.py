"""Grid governance — 网格化社会治理 (津治通): grids, events, four-level dispatch, whistles."""
