"""`fota-callbacks demo`: the whole lifecycle on V1, V2 and V3 against the embedded fake. No credentials, no network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ._controllers import UrlCallbacksController
from ._models import CallbackUrl, CallbackUrlRequest, SuccessResult
from ._pipeline import Middleware
from .testing import FakeThingSpace
from .v1.models import CallbackService, FotaV1CallbackRegistrationRequest
from .v2.models import FotaV2CallbackRegistrationRequest
from .v3.models import FotaV3CallbackRegistrationRequest

ACCOUNT = "0000123456-00001"


RequestT = TypeVar("RequestT", bound=CallbackUrlRequest)
SummaryT = TypeVar("SummaryT", bound=CallbackUrl)
ResultT = TypeVar("ResultT", bound=CallbackUrl)
SuccessT = TypeVar("SuccessT", bound=SuccessResult)


NONE = "(none registered)"
"""What the demo prints for a list with nothing registered (as `fota-callbacks v2 list` does)."""


async def _url_lifecycle(
    name: str,
    controller: UrlCallbacksController[SummaryT, RequestT, ResultT, SuccessT],
    request: type[RequestT],
) -> None:
    print(f"\n{name}")
    url = f"https://listener.example.com/fota/{name.lower()}"
    print(f"  register_callback   -> {(await controller.register_callback(ACCOUNT, request(url=url))).url}")
    print(f"  list                -> {(await controller.list_registered_callbacks(ACCOUNT)).url}")
    updated = await controller.update_callback(ACCOUNT, request(url=url + "/updated"))
    print(f"  update_callback     -> {updated.url}")
    print(f"  deregister_callback -> success={(await controller.deregister_callback(ACCOUNT)).success}")
    print(f"  list                -> {(await controller.list_registered_callbacks(ACCOUNT)).url or NONE}")


async def run_demo(middleware: Sequence[Middleware] = ()) -> int:
    """Print the lifecycle of a callback registration on each version, against an in-process fake."""
    fake = FakeThingSpace()
    print(f"FakeThingSpace in-process; account {ACCOUNT}\n")
    async with fake.client(middleware=middleware) as client:
        print("V1")
        body = FotaV1CallbackRegistrationRequest(
            name=CallbackService.FOTA,
            url="https://listener.example.com/fota/v1",
            username="listener",
            password="s3cret",
        )
        registered = await client.v1.register_callback(ACCOUNT, body)
        print(f"  register_callback   -> account {registered.account_name}, service {registered.service_name}")
        for callback in await client.v1.list_registered_callbacks(ACCOUNT):
            print(f"  list                -> {callback.name}: {callback.url} (username {callback.username})")
        print(f"  deregister_callback -> success={(await client.v1.deregister_callback(ACCOUNT)).success}")
        print(f"  list                -> {await client.v1.list_registered_callbacks(ACCOUNT) or NONE}")

        await _url_lifecycle("V2", client.v2, FotaV2CallbackRegistrationRequest)
        await _url_lifecycle("V3", client.v3, FotaV3CallbackRegistrationRequest)

    operations = [f"{recorded.method} {recorded.path}" for recorded in fake.requests]
    print(f"\n{len(operations)} requests reached the fake, starting with the OAuth token and M2M session login:")
    for line in operations[:3]:
        print(f"  {line}")
    print("  ...")
    return 0
