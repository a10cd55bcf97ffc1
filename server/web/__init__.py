"""The pages served by the server (see server/http/routes_web.py); static files only."""
