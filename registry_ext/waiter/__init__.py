"""``registry-ext feed-waiter``: the update feed's long-polls, held outside gunicorn (server.py, hub.py)."""
