"""Store and broker URLs: which server a URL names, and how to show it with passwords hidden."""

from __future__ import annotations

import re

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
"""The URL schemes that name a Redis server (as redis-py reads them), for stores and brokers."""

_NETLOC = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<netloc>[^/?#]*)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")


def mask_url(url: str) -> str:
    """The URL with any password (``user:PASSWORD@`` or ``?password=``) shown as ``***``.

    Usernames, hosts, ports and database numbers stay visible: they tell the reader
    which server could not be reached. The rest of the URL is left exactly as written.

    Example:
        >>> mask_url("redis://default:s3cret@cache:6379/0")
        'redis://default:***@cache:6379/0'
    """
    # Split as urllib (and so redis-py) does: the authority ends at the first / ? or #,
    # and the password is what follows the first ':' before the last '@' in it.
    match = _NETLOC.match(url)
    if match is not None:
        userinfo, at, host = match["netloc"].rpartition("@")
        if at and ":" in userinfo:
            netloc = f"{userinfo.partition(':')[0]}:***@{host}"
            url = match["scheme"] + netloc + url[match.end() :]
    return _QUERY_PASSWORD.sub(r"\1***", url)


def is_redis_url(url: str) -> bool:
    """Whether ``url`` names a Redis server (``redis://``, ``rediss://`` or ``unix://``)."""
    return url.startswith(REDIS_SCHEMES)
