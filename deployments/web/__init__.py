"""`sbu web`: the officers' desk, a web page for each case and a form for each step.

Server-rendered (FastAPI and Jinja2, no script on any page) on the same case service, registry and
domain forms as `sbu record` and the dashboard: `app.py` (the application and its server),
`routes.py` (the pages), `forms.py` (the forms, derived from the domain's), `refusals.py` (a
refusal in words at its field), `pages.py` (what each page shows), `who.py` (who is at the desk,
the session and the form token), `titles.py` (how choices are named), `templates/` and `static/`.
"""
