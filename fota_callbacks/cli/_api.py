"""`fota-callbacks v1|v2|v3 list|register|update|deregister ACCOUNT`: the API, with the environment's credentials."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import _errors as errors
from .._client import FotaCallbacksClient
from .._environments import Environment
from .._serde import shared_converter
from .._validation import check_account, check_callback_url
from ..v1.controller import V1
from ..v1.models import CallbackService, FotaV1CallbackRegistrationRequest
from ..v2.controller import V2
from ..v2.models import FotaV2CallbackRegistrationRequest
from ..v3.controller import V3
from ..v3.models import FotaV3CallbackRegistrationRequest
from ._common import (
    OK,
    CliError,
    Output,
    Progress,
    add_command,
    api_error_code,
    escape,
    host_of,
    positive_seconds,
    retries,
    waiting_notice,
)

OPERATIONS = {
    "v1": ("list", "register", "deregister"),
    "v2": ("list", "register", "update", "deregister"),
    "v3": ("list", "register", "update", "deregister"),
}
_REQUESTS = {"v2": FotaV2CallbackRegistrationRequest, "v3": FotaV3CallbackRegistrationRequest}
_URL_SCHEMES = {
    "v1": V1.callback_url_schemes,
    "v2": V2.version.callback_url_schemes,
    "v3": V3.version.callback_url_schemes,
}
_NONE_REGISTERED = "(none registered)"


def add_parsers(commands: Any) -> None:
    for version, operations in OPERATIONS.items():
        sub = add_command(
            commands,
            version,
            run,
            help=f"Software Management Callbacks {version.upper()}: {', '.join(operations)}",
            description=f"Software Management Callbacks {version.upper()}: {', '.join(operations)} "
            "the callback of an account, with the credentials of the THINGSPACE_* variables.",
        )
        sub.add_argument("operation", choices=operations)
        sub.add_argument("account", help="account identifier, ##########-#####")
        with_url = "register" if version == "v1" else "register, update"
        sub.add_argument("--url", help=f"callback URL ({with_url})")
        if version == "v1":
            sub.add_argument("--username", help="username echoed in every callback message (register)")
            sub.add_argument("--password", help="password echoed in every callback message (register)")
        sub.add_argument("--environment", choices=[env.value for env in Environment], default="production")
        sub.add_argument("--base-url", help="another root URL, e.g. http://127.0.0.1:8080 (or THINGSPACE_BASE_URL)")
        sub.add_argument("--json", action="store_true", help="print the result, and errors, as JSON")
        sub.add_argument("--timeout", type=positive_seconds, default=30.0, help="seconds per attempt (default 30)")
        sub.add_argument("--max-retries", type=retries, default=2, help="retries after a failed attempt (default 2)")


def _check(args: argparse.Namespace) -> None:
    """What the command line alone shows to be wrong, before credentials are looked for."""
    operation = args.operation
    check_account(args.account)
    if operation in ("register", "update") and not args.url:
        raise errors.InvalidArgumentError("--url", f"{operation} needs --url")
    if operation not in ("register", "update") and args.url:
        raise errors.InvalidArgumentError("--url", f"{operation} takes no --url")
    if args.url:
        # The SDK would name it `body.url`, the parameter of its model; the user typed --url.
        check_callback_url(args.url, _URL_SCHEMES[args.command], "--url")
    if args.command == "v1" and operation != "register" and (args.username or args.password):
        raise errors.InvalidArgumentError("--username/--password", f"{operation} takes no credentials")


async def _call(client: FotaCallbacksClient, args: argparse.Namespace) -> Any:
    version, operation, account = args.command, args.operation, args.account
    if version == "v1":
        if operation == "list":
            return await client.v1.list_registered_callbacks(account)
        if operation == "deregister":
            return await client.v1.deregister_callback(account)
        body = FotaV1CallbackRegistrationRequest(
            name=CallbackService.FOTA, url=args.url, username=args.username, password=args.password
        )
        return await client.v1.register_callback(account, body)
    controller = client.v2 if version == "v2" else client.v3
    if operation == "list":
        return await controller.list_registered_callbacks(account)
    if operation == "deregister":
        return await controller.deregister_callback(account)
    request: Any = _REQUESTS[version](url=args.url)
    method = controller.register_callback if operation == "register" else controller.update_callback
    return await method(account, request)


def table(data: Any) -> str:
    """A result as aligned `key  value` lines; one block per registration. Nothing registered (V1's empty list,
    V2/V3's summary without a URL) reads the same on every version."""
    rows = data if isinstance(data, list) else [data]
    if not rows or rows == [{}]:
        return _NONE_REGISTERED
    blocks = []
    for row in rows:
        fields = dict(row)
        width = max(len(key) for key in fields)
        # The values come from the server: one escaped line each, whatever it put in them.
        blocks.append("\n".join(f"{escape(key):<{width}}  {escape(str(value))}" for key, value in fields.items()))
    return "\n\n".join(blocks)


def _redact(data: Any) -> Any:
    """Callback passwords are secrets: never printed."""
    if isinstance(data, list):
        return [_redact(item) for item in data]
    if isinstance(data, dict) and data.get("password"):
        return {**data, "password": "***"}
    return data


async def run(args: argparse.Namespace, output: Output) -> int:
    progress = Progress(output, verbose=args.verbose)
    try:
        _check(args)
        with progress.logging():
            client = FotaCallbacksClient(
                environment=args.environment,
                base_url=args.base_url,
                timeout=args.timeout,
                max_retries=args.max_retries,
                middleware=[progress.middleware],
            )
            async with client, waiting_notice(progress):
                result = await _call(client, args)
    except errors.InvalidArgumentError:
        raise  # main() words it
    except errors.FotaError as exc:
        request = getattr(exc, "request", None)
        host = progress.host if request is None else host_of(request.url)
        raise CliError(api_error_code(exc), str(exc), host=host) from None
    data = _redact(shared_converter().unstructure(result))
    output.line(json.dumps(data, indent=2) if args.json else table(data))
    return OK
