"""The ``compatecho`` service: greets each client, echoes its lines, stops on ``stop``."""

# Twisted annotates only part of its API; calling its unannotated parts is expected here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from typing import Any, ClassVar

from twisted.application import service, strports
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python import usage

GREETING = b"compatecho ready"
STARTED = "acme-twisted echo service started"
STOPPED = "acme-twisted echo service stopped"

log = Logger()


class Options(usage.Options):
    optParameters: ClassVar[list[list[Any]]] = [
        ["port", "p", None, "The TCP port to listen on, on 127.0.0.1.", int],
        ["endpoint", "e", None, "An endpoint description to listen on instead of --port."],
    ]

    def postOptions(self) -> None:
        if self["port"] is None and self["endpoint"] is None:
            raise usage.UsageError("give --port or --endpoint")


class Echo(LineReceiver):
    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.sendLine(GREETING)

    def lineReceived(self, line: bytes) -> None:
        if line.strip() != b"stop":
            self.sendLine(line)
            return
        from twisted.internet import reactor

        log.info("stop asked by a client")
        transport: Any = self.transport
        transport.loseConnection()
        running: Any = reactor
        running.stop()


class EchoService(service.MultiService):
    """Logs when it starts and when it stops, so a test can tell an orderly shutdown."""

    def startService(self) -> None:
        super().startService()
        log.info(STARTED)

    def stopService(self) -> Any:
        stopped = super().stopService()
        log.info(STOPPED)
        return stopped


def makeService(options: Options) -> Any:
    description = options["endpoint"] or f"tcp:{options['port']}:interface=127.0.0.1"
    top = EchoService()
    factory: Any = Factory.forProtocol(Echo)
    strports.service(description, factory).setServiceParent(top)
    return top
