"""Test doubles: `FakeThingSpace`, an in-memory, stateful fake of ThingSpace, in-process or over HTTP.

```python
import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, Fault

fake = FakeThingSpace()
async with fake.client() as client:  # or: with serve(fake) as base_url: FotaCallbacksClient(base_url=base_url, ...)
    await client.v2.register_callback("0000123456-00001", fota.FotaV2CallbackRegistrationRequest(url="https://l.example"))
    fake.inject(Fault.status(503), times=2)  # the next two requests fail; the client retries
    await client.v2.list_registered_callbacks("0000123456-00001")
assert fake.callbacks("0000123456-00001").v2 == "https://l.example"

# ... and plays ThingSpace calling back: POST a message to the registered URL (here redirected to a local listener)
fake.redirect_deliveries("https://l.example", to="http://127.0.0.1:8000/fota/callbacks")
delivery = await fake.emit_upgrade_event("0000123456-00001", "upgradeScheduled", upgrade_id="u-1", version="v2")
assert delivery.status_code == 200 and fake.deliveries == [delivery]
```
"""

import warnings
from typing import Any, get_args

from . import _delivery, _faults, _records
from ._delivery import CallbackDeliveryError, CallbackNotRegisteredError, Delivery
from ._fake import AccountCallbacks, FakeThingSpace
from ._faults import Fault
from ._records import RecordedRequest
from ._scripted import ScriptedAnswer, ScriptedTransport, UnscriptedRequestError
from ._serve import serve

__all__ = [
    "AccountCallbacks",
    "CallbackDeliveryError",
    "CallbackNotRegisteredError",
    "Delivery",
    "FakeThingSpace",
    "Fault",
    "RecordedRequest",
    "ScriptedAnswer",
    "ScriptedTransport",
    "UnscriptedRequestError",
    "serve",
]

_LITERALS = {
    "DeliveryVersion": _delivery,
    "FaultKind": _faults,
    "Operation": _records,
    "UpgradeEventType": _delivery,
    "Version": _records,
}
"""The `Literal` aliases this module exported in 0.1: annotations, not things to construct. Each still works, with
a warning naming the `Literal` to write instead."""


def __getattr__(name: str) -> Any:
    if name == "serve_app":
        message = "fota_callbacks.testing.serve_app is deprecated: use fota_callbacks.testing.serve (any ASGI app too)"
        found: Any = serve
    elif name in _LITERALS:
        found = getattr(_LITERALS[name], name)
        spelled = ", ".join(repr(value) for value in get_args(found))
        message = f"fota_callbacks.testing.{name} is deprecated and will be removed: annotate with Literal[{spelled}]"
    else:
        raise AttributeError(f"module 'fota_callbacks.testing' has no attribute {name!r}")
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    return found
