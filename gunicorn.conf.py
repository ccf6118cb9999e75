"""gunicorn's settings for consentsite, as `make serve` runs it: `gunicorn -c gunicorn.conf.py`.

- `BIND` (default `127.0.0.1:8000`): the address to listen on; `WEB_CONCURRENCY` (default 2):
  the number of worker processes, each answering one request at a time with one database
  connection of its own.
- Header names with an underscore are mapped into the environment (`header_map = "dangerous"`)
  and then, before the application sees them, filtered by the rule of consentsite/servers.py:
  only `MCK_CORRELATIONID`, the member API's documented spelling, is kept, so no other underscore
  name can pass for its hyphenated twin.
"""

import os

from consentsite.servers import kept_headers

wsgi_app = "consentsite.wsgi"
bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
header_map = "dangerous"


def pre_request(worker, req):
    req.headers = kept_headers(req.headers)
    worker.log.debug("%s %s", req.method, req.path)
