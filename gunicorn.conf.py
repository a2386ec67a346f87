"""gunicorn settings for the web process; gunicorn reads ./gunicorn.conf.py from its working directory
by default (the image's WORKDIR, the repository root for the Procfile and scripts/run).

The command line (Dockerfile CMD, Procfile) still sets bind, workers and timeout. This file adds the
start-up check: the master loads the settings once before it forks any worker, so a missing or
malformed variable is one line naming it and exit status 2, instead of a traceback from every
worker that fails to boot.
"""

from __future__ import annotations

import sys
from typing import Any

from app.config import ConfigError, load_settings


def on_starting(server: Any) -> None:
    try:
        load_settings()
    except ConfigError as exc:
        print(f"gunicorn: configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
