"""Django's PostgreSQL backend with a health check that costs no round trip.

Django checks a kept connection before a request's first query (CONN_HEALTH_CHECKS) and after a
request whose queries failed; its check is a `SELECT 1`, one round trip per request. Here the
check looks at the socket instead. Between requests the server has nothing to say to an idle
connection of ours (we LISTEN for nothing), so a socket with something to read is one the server
is closing (a restart, a terminated backend: it sends its reason, then closes): it is dropped and
the request gets a new connection. A connection psycopg knows to be broken is dropped too. What
the socket cannot tell (a server gone without a word) fails that request's query, which drops the
connection at the request's end, as Django does after any error.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        poller = select.poll()
        poller.register(self.connection.fileno(), select.POLLIN)
        return not poller.poll(0)
