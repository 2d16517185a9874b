"""The kiosk page: ``frontend/index.html`` at ``/`` and the other files of ``frontend/`` by path.

Files are sent with ``Cache-Control: no-cache`` (the browser revalidates with ETag/Last-Modified
every time), so an updated dashboard shows up on the next load without stale mixes of old and
new modules. Anything missing is a JSON 404 like the rest of the API.
"""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, send_from_directory
from werkzeug.routing import PathConverter

bp = Blueprint("frontend", __name__)


class PageFileConverter(PathConverter):
    """A path outside ``api/``, so unknown API URLs answer 404/405 for themselves, not as files."""

    regex = r"(?!api/)[^/].*?"


def _send(filename: str):
    response = send_from_directory(current_app.config["FRONTEND_DIR"], filename, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
def index():
    return _send("index.html")


@bp.get("/<page_file:filename>")
def static_file(filename: str):
    return _send(filename)


def init_app(app: Flask) -> None:
    app.url_map.converters["page_file"] = PageFileConverter
    app.register_blueprint(bp)
