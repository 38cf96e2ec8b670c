"""The dashboard: server-rendered HTML under /dashboard (Jinja2 + a vendored htmx for the live parts).

It owns no data and no rules: every page reads through, and every button acts through, the same public service
functions and scope checks as the JSON API (conveyor.jobs, admin.service, reminders.service, ...). Its own code is
presentation, the session cookie (conveyor.platform.auth.sessions) and CSRF. The API function loads this package
only for requests under /dashboard (capabilities.py `pages`), so the API's cold start does not pay for Jinja2.
"""
