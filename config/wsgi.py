from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
django_application = get_wsgi_application()

from config.stack import buffered_wsgi  # noqa: E402 (after Django is set up)

# A response in memory reaches the server as one bytes object (config.stack.buffered_wsgi).
application = buffered_wsgi(django_application)
