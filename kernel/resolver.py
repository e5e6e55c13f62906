"""The resolver: host names to addresses, looked up in worker threads.

The C library's look-ups (``getaddrinfo`` and friends) block for as long as DNS takes, and
the kernel runs every task on one thread: one slow answer would stand them all still. So
each look-up runs in the kernel's worker threads (``kernel/threads.py``); ``kernel.socket``
offers these coroutines under the stdlib's names.

The stdlib also resolves names where one might not expect it: ``bind``, ``connect`` and
``sendto`` take a ``(host, port)`` tuple and look a name up themselves, on the calling
thread. ``names_a_host`` says whether an address needs that, and ``numeric_address`` does
it first, here -- the common case, numbers, goes straight through, with no thread hop.

Read next: ``kernel/socket.py``.
"""

from __future__ import annotations

import functools
import ipaddress
import socket as _stdlib
from typing import Any

from .threads import run_in_thread

__all__ = [
    "getaddrinfo",
    "getfqdn",
    "gethostbyaddr",
    "gethostbyname",
    "gethostbyname_ex",
    "getnameinfo",
    "is_numeric",
    "names_a_host",
    "numeric_address",
    "numeric_host",
]


# -- the stdlib's look-ups, in worker threads --------------------------------------------


async def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` in a worker thread (it can block on DNS)."""
    result: list[tuple[Any, ...]] = await run_in_thread(
        _stdlib.getaddrinfo, host, port, family, type, proto, flags
    )
    return result


async def getnameinfo(sockaddr: Any, flags: int) -> tuple[str, str]:
    """``socket.getnameinfo`` in a worker thread."""
    result: tuple[str, str] = await run_in_thread(_stdlib.getnameinfo, sockaddr, flags)
    return result


async def gethostbyname(hostname: str) -> str:
    """``socket.gethostbyname`` in a worker thread."""
    result: str = await run_in_thread(_stdlib.gethostbyname, hostname)
    return result


async def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """``socket.gethostbyname_ex`` in a worker thread."""
    result: tuple[str, list[str], list[str]] = await run_in_thread(
        _stdlib.gethostbyname_ex, hostname
    )
    return result


async def gethostbyaddr(address: str) -> tuple[str, list[str], list[str]]:
    """``socket.gethostbyaddr`` in a worker thread."""
    result: tuple[str, list[str], list[str]] = await run_in_thread(_stdlib.gethostbyaddr, address)
    return result


async def getfqdn(name: str = "") -> str:
    """``socket.getfqdn`` in a worker thread: it asks the resolver twice (a reverse lookup
    of the name's address)."""
    result: str = await run_in_thread(_stdlib.getfqdn, name)
    return result


# -- addresses the stdlib would resolve on the kernel's thread -------------------------------


@functools.lru_cache(maxsize=1024)
def is_numeric(host: str) -> bool:
    """Whether the stdlib takes ``host`` without a resolver: ``""`` (every interface),
    ``"<broadcast>"``, or an address in numbers. Parsed in Python: no C resolver call, not
    even one that would only parse, can stall the kernel's thread.

    Remembered: ``sendto`` asks on every datagram, and a parse costs a third of a send.
    """
    if not host or host == "<broadcast>":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def names_a_host(address: Any) -> bool:
    """Whether the stdlib would resolve ``address``'s host: a ``(host, port...)`` tuple whose
    host is a name, not numbers. Cheap when it is numbers (``is_numeric`` remembers)."""
    if type(address) is not tuple or not address:
        return False  # a Unix path, say; or no address at all, for the stdlib to refuse
    host = address[0]
    if isinstance(host, bytes | bytearray):  # the stdlib takes these too
        host = _host_text(host)
    return type(host) is str and not is_numeric(host)


def _host_text(host: bytes | bytearray) -> str:
    """A host given as bytes, as text. (Latin-1 maps every byte to one character, so
    nothing fails here; a numeric address is ASCII, and a name is the resolver's to judge.)"""
    return bytes(host).decode("latin-1")


async def numeric_host(host: str, family: int) -> str:
    """``host`` as ``bind()``, ``connect()`` or ``sendto()`` can take it without blocking: a
    name becomes its first address in ``family``, looked up in a worker thread; a numeric
    one stays, with no thread hop.

    Discussion: ``socket.bind((name, port))`` resolves the name itself, in the C library, on
    the kernel's thread: every task would stand still for as long as DNS takes.
    """
    if is_numeric(host):
        return host
    return await _first_address(host, family)


async def _first_address(host: str | bytes, family: int) -> str:
    infos = await getaddrinfo(host, None, family, _stdlib.SOCK_STREAM)
    return str(infos[0][4][0])


async def numeric_address(address: tuple[Any, ...], family: int) -> tuple[Any, ...]:
    """``address`` with its host name replaced by its first address in ``family`` (a
    socket's), for ``AF_INET`` and ``AF_INET6``; another family's tuple (an interface name
    for ``AF_PACKET``, say) names no host, and stays as it is."""
    if family != _stdlib.AF_INET and family != _stdlib.AF_INET6:
        return address
    host = address[0]
    if type(host) is str:
        return (await numeric_host(host, family), *address[1:])
    # Bytes (names_a_host lets nothing else through), and a name: the stdlib hands them to
    # the resolver as they are, which decoding them here could change (UTF-8, say).
    return (await _first_address(bytes(host), family), *address[1:])
