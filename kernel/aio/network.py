"""The adapter loop's network methods: sockets, connections, servers, datagrams, TLS.

``NetworkMixin`` is mixed into the adapter's event loop class and gives it the network half
of ``asyncio.AbstractEventLoop``. It is written against the loop's *public* interface only
(``add_reader``/``remove_reader``, ``add_writer``/``remove_writer``, ``call_soon``,
``call_later``, ``call_exception_handler``, ``create_future``, ``create_task``,
``run_in_executor``, ``get_debug``, ``is_closed``) plus the loop's ``_check_closed()``, so
the same code runs on asyncio's own selector loop (the tests do that) and on the kernel.

This module only puts the pieces together. Each is a mixin in its own module, built on the
ones before it:

``sockets.py``: ``SocketsMixin``
    The ``sock_*`` coroutines, one socket operation each: try the non-blocking call; if it
    would block, wait for an ``add_reader``/``add_writer`` callback and retry. Also
    ``getaddrinfo``/``getnameinfo``.
``connections.py``: ``ConnectionsMixin``
    ``create_connection``, ``create_unix_connection``, ``start_tls``: a connected socket
    handed to a ``SocketTransport`` (``transports.py``), with the stdlib's ``SSLProtocol``
    stacked on it for TLS.
``servers.py``: ``ServersMixin``
    ``create_server``, ``create_unix_server``, ``connect_accepted_socket``: bind listening
    sockets and hand them to a ``Server``.
``serving.py``: ``Server``
    Accepts from a reader callback on each listening socket, builds one transport per
    connection, and keeps track of them until they are lost.
``datagrams.py``: ``DatagramsMixin``
    ``create_datagram_endpoint``: a bound and/or connected socket in a ``DatagramTransport``.
``sendfile.py``: ``SendfileMixin``
    ``sock_sendfile`` and ``sendfile``: ``os.sendfile`` where it can, else read and send.

Each module's docstring lists how it differs from asyncio (``base_events.py``,
``selector_events.py``, ``unix_events.py``).

Read next: ``kernel/aio/sockets.py``.
"""

from __future__ import annotations

from .datagrams import DatagramsMixin
from .sendfile import SendfileMixin
from .servers import ServersMixin
from .serving import Server

__all__ = ["NetworkMixin", "Server"]


class NetworkMixin(ServersMixin, DatagramsMixin, SendfileMixin):
    """The network methods of an ``asyncio.AbstractEventLoop``; mix in before the loop class.

    ::

        class EventLoop(NetworkMixin, <the loop class with add_reader, call_soon, ...>): ...

    The mixin has no ``__init__`` and keeps one piece of state on the loop, created on
    first use: which ``sock_*`` call owns each descriptor's reader and writer slot. What a
    connection needs lives in its transport, what a server needs in its ``Server``.
    """
