"""Server-side pieces shared by Orbit's ASGI apps (the bridge and every plugin app).

The client SDK never imports this package.
"""
