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
```
"""

from ._asgi import serve
from ._fake import AccountCallbacks, FakeThingSpace
from ._faults import Fault, FaultKind
from ._records import Operation, RecordedRequest, Version

__all__ = [
    "AccountCallbacks",
    "FakeThingSpace",
    "Fault",
    "FaultKind",
    "Operation",
    "RecordedRequest",
    "Version",
    "serve",
]
