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

from ._asgi import serve
from ._delivery import CallbackDeliveryError, CallbackNotRegisteredError, Delivery, DeliveryVersion, UpgradeEventType
from ._fake import AccountCallbacks, FakeThingSpace
from ._faults import Fault, FaultKind
from ._records import Operation, RecordedRequest, Version
from ._scripted import ScriptedAnswer, ScriptedTransport, UnscriptedRequestError
from ._serve import serve_app

__all__ = [
    "AccountCallbacks",
    "CallbackDeliveryError",
    "CallbackNotRegisteredError",
    "Delivery",
    "DeliveryVersion",
    "FakeThingSpace",
    "Fault",
    "FaultKind",
    "Operation",
    "RecordedRequest",
    "ScriptedAnswer",
    "ScriptedTransport",
    "UnscriptedRequestError",
    "UpgradeEventType",
    "Version",
    "serve",
    "serve_app",
]
