"""The service's settings with bench/minimal_view.py's routes (bench/load.py serves them)."""

from consentsite.settings import *  # noqa: F403

ROOT_URLCONF = "minimal_view"
