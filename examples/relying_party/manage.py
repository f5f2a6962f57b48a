#!/usr/bin/env python
"""The demo relying party's manage.py (its own Django project, next to the portal, never inside it)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    # Always its own settings, even in a shell where the portal's DJANGO_SETTINGS_MODULE is exported.
    os.environ["DJANGO_SETTINGS_MODULE"] = "rp.settings"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
