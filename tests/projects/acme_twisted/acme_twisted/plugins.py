"""The plugin objects, cheap to import: the service and the reporter are imported on use."""

# Twisted annotates only part of its API; calling its unannotated parts is expected here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.application.service import ServiceMaker
from twisted.internet.interfaces import IStreamServerEndpointStringParser
from twisted.plugin import IPlugin
from twisted.trial.itrial import IReporter
from zope.interface import implementer

if TYPE_CHECKING:
    from twisted.internet.endpoints import TCP4ServerEndpoint

echoMaker = ServiceMaker(
    "Compat echo",
    "acme_twisted.echo",
    "A line echo server on 127.0.0.1 that greets each client.",
    "compatecho",
)


@implementer(IPlugin, IStreamServerEndpointStringParser)
class LoopbackTCPParser:
    """``compattcp:port=N[:interface=ADDRESS][:backlog=N]``: TCP over IPv4, on 127.0.0.1
    unless another interface is given."""

    prefix = "compattcp"

    def parseStreamServer(self, reactor: Any, *args: str, **kwargs: str) -> TCP4ServerEndpoint:
        from twisted.internet.endpoints import TCP4ServerEndpoint

        port = kwargs.get("port", args[0] if args else "0")
        interface = kwargs.get("interface", "127.0.0.1")
        backlog = int(kwargs.get("backlog", "50"))
        return TCP4ServerEndpoint(reactor, int(port), backlog, interface)


tcpParser = LoopbackTCPParser()


@implementer(IPlugin, IReporter)
class ReporterPlugin:
    """Describes a reporter class to trial, as the reporters Twisted ships are described."""

    def __init__(
        self, name: str, module: str, description: str, longOpt: str, shortOpt: str | None,
        klass: str,
    ) -> None:
        self.name = name
        self.module = module
        self.description = description
        self.longOpt = longOpt
        self.shortOpt = shortOpt
        self.klass = klass


markerReporter = ReporterPlugin(
    "Marker",
    "acme_twisted.reporter",
    "The tree reporter, followed by a recognizable summary line.",
    "compatreporter",
    None,
    "MarkerReporter",
)
