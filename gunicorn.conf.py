"""gunicorn's settings for consentsite: `gunicorn -c gunicorn.conf.py consentsite.wsgi`.

Header names with an underscore are mapped into the environment (`header_map = "dangerous"`)
and then, before the application sees them, filtered by the rule of consentsite/servers.py: only
`MCK_CORRELATIONID`, the member API's documented spelling, is kept, so no other underscore name
can pass for its hyphenated twin.
"""

from consentsite.servers import kept_headers

wsgi_app = "consentsite.wsgi"
header_map = "dangerous"


def pre_request(worker, req):
    req.headers = kept_headers(req.headers)
    worker.log.debug("%s %s", req.method, req.path)
