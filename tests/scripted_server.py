"""The older face of the served script, for tests written against it: `scripted_server.script(*steps)`,
`.default`, `.received`. New tests use conftest's `served_script` (a `ScriptedTransport`) directly.

It is a `ScriptedTransport` behind the session's one uvicorn server (tests/harness.py), so the queue and the
record are the script's; what it adds is `default`, the answer to a request nothing was queued for (HTTP 599
unless a test sets another). Steps, consumed one per request:
- a `fota.Response`: sent as it is;
- `Slow(seconds, response)`: sent after a delay;
- `Drop()`: headers and part of a body, then the connection is cut;
- `Hang()`: never answers (until the client gives up).
"""

from __future__ import annotations

import anyio
import attrs

import fota_callbacks as fota
from fota_callbacks.testing import ScriptedTransport, UnscriptedRequestError
from fota_callbacks.testing._asgi import AsgiApp
from tests.harness import Sent, json_response

__all__ = ["Drop", "Hang", "ScriptedServer", "Slow", "Step"]


@attrs.frozen
class Slow:
    seconds: float
    response: fota.Response


@attrs.frozen
class Drop:
    pass


@attrs.frozen
class Hang:
    pass


Step = fota.Response | Slow | Drop | Hang

UNSCRIPTED = fota.Response(599, {"content-type": "text/plain"}, b"unscripted request")


class ScriptedServer:
    """Queued steps and a default answer, over a `ScriptedTransport` served at `base_url`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.transport = ScriptedTransport()
        self.default: Step = UNSCRIPTED
        self.asgi_app = AsgiApp(self._handle)

    def script(self, *steps: Step) -> None:
        for step in steps:
            if isinstance(step, fota.Response):
                self.transport.add(step)
            elif isinstance(step, Slow):
                self.transport.add(step.response, delay=step.seconds)
            elif isinstance(step, Drop):
                self.transport.drop()
            else:
                self.transport.hang()

    json = staticmethod(json_response)

    @property
    def received(self) -> list[Sent]:
        return [Sent.of(request) for request in self.transport.requests]

    async def _handle(self, request: fota.Request) -> fota.Response:
        try:
            return await self.transport.send(request)
        except UnscriptedRequestError:
            step = self.default
        if isinstance(step, Hang):
            await anyio.sleep_forever()
        if isinstance(step, Drop):
            raise fota.ApiConnectionError("scripted drop", request=request)
        if isinstance(step, Slow):
            await anyio.sleep(step.seconds)
            return step.response
        assert isinstance(step, fota.Response)
        return step
