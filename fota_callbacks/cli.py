"""The `fota-callbacks` command line (standard library only).

Exit codes: 0 success; 1 the API refused the call; 2 bad usage or input; 3 missing credentials;
4 no response (connection failure or timeout); 5 an unexpected response body.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from . import _errors as errors
from ._client import FotaCallbacksClient
from ._environments import Environment
from ._serde import converter
from ._version import __version__
from .v1.models import CallbackService, FotaV1CallbackRegistrationRequest
from .v2.models import FotaV2CallbackRegistrationRequest
from .v3.models import FotaV3CallbackRegistrationRequest

__all__ = ["main"]

EXAMPLES = """\
examples:
  fota-callbacks demo
  fota-callbacks v2 list 0000123456-00001
  fota-callbacks v2 register 0000123456-00001 --url https://example.com/fota
  fota-callbacks v1 register 0000123456-00001 --url https://example.com/fota --username cb --password s3cret
  fota-callbacks v3 deregister 0000123456-00001 --json
  fota-callbacks fake-server --port 8080

credentials come from THINGSPACE_CLIENT_ID, THINGSPACE_CLIENT_SECRET and THINGSPACE_M2M_TOKEN
(or THINGSPACE_USERNAME and THINGSPACE_PASSWORD); THINGSPACE_BASE_URL replaces the root.
"""

OPERATIONS = {
    "v1": ("list", "register", "deregister"),
    "v2": ("list", "register", "update", "deregister"),
    "v3": ("list", "register", "update", "deregister"),
}
REQUESTS = {"v2": FotaV2CallbackRegistrationRequest, "v3": FotaV3CallbackRegistrationRequest}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fota-callbacks",
        description="Manage ThingSpace Software Management (FOTA) callback registrations.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fota-callbacks {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="the whole lifecycle on V1, V2 and V3 against the embedded fake (no network)")
    fake = commands.add_parser("fake-server", help="serve FakeThingSpace on 127.0.0.1 for local development")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8080)
    for version, operations in OPERATIONS.items():
        sub = commands.add_parser(version, help=f"Software Management Callbacks {version.upper()}")
        sub.add_argument("operation", choices=operations)
        sub.add_argument("account", help="account identifier, ##########-#####")
        sub.add_argument("--url", help="callback URL (register, update)")
        if version == "v1":
            sub.add_argument("--username", help="V1: username echoed in every callback message")
            sub.add_argument("--password", help="V1: password echoed in every callback message")
        sub.add_argument("--environment", choices=[env.value for env in Environment], default="production")
        sub.add_argument("--base-url", help="another root URL (e.g. http://127.0.0.1:8080)")
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.add_argument("--timeout", type=float, default=30.0, help="seconds per attempt (default 30)")
        sub.add_argument("--max-retries", type=int, default=2, help="retries after a failed attempt (default 2)")
    return parser


async def _call(client: FotaCallbacksClient, args: argparse.Namespace) -> Any:
    version, operation, account = args.command, args.operation, args.account
    if operation in ("register", "update") and not args.url:
        raise errors.InvalidArgumentError("--url", f"{operation} needs --url")
    if operation not in ("register", "update") and args.url:
        raise errors.InvalidArgumentError("--url", f"{operation} takes no --url")
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
    request: Any = REQUESTS[version](url=args.url)
    method = controller.register_callback if operation == "register" else controller.update_callback
    return await method(account, request)


def _table(data: Any) -> str:
    rows = data if isinstance(data, list) else [data]
    if not rows:
        return "(none registered)"
    blocks = []
    for row in rows:
        fields = dict(row)
        width = max((len(key) for key in fields), default=0)
        blocks.append("\n".join(f"{key:<{width}}  {value}" for key, value in fields.items()) or "(empty)")
    return "\n\n".join(blocks)


async def _run_api(args: argparse.Namespace) -> int:
    async with FotaCallbacksClient(
        environment=args.environment, base_url=args.base_url, timeout=args.timeout, max_retries=args.max_retries
    ) as client:
        result = await _call(client, args)
    data = _redact(converter.unstructure(result))
    print(json.dumps(data, indent=2) if args.json else _table(data))
    return 0


def _redact(data: Any) -> Any:
    """Callback passwords are secrets: never printed."""
    if isinstance(data, list):
        return [_redact(item) for item in data]
    if isinstance(data, dict) and data.get("password"):
        return {**data, "password": "***"}
    return data


def _run_fake_server(host: str, port: int) -> int:
    try:
        import uvicorn
    except ImportError:
        return _fail(2, "fake-server needs uvicorn: pip install 'fota-callbacks[server]'")
    from .testing import FakeThingSpace

    fake = FakeThingSpace()
    print(f"FakeThingSpace on http://{host}:{port} (any client id/secret and username/password are accepted)")
    print(f"  export THINGSPACE_BASE_URL=http://{host}:{port}")
    uvicorn.run(fake.asgi_app, host=host, port=port, log_level="warning", lifespan="off")
    return 0


def _fail(code: int, message: str) -> int:
    print(f"fota-callbacks: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from ._demo import run_demo

            return anyio.run(run_demo)
        if args.command == "fake-server":
            return _run_fake_server(args.host, args.port)
        return anyio.run(_run_api, args)
    except errors.MissingCredentialsError as exc:
        return _fail(3, str(exc))
    except errors.InvalidArgumentError as exc:
        return _fail(2, str(exc))
    except errors.ApiConnectionError as exc:
        return _fail(4, str(exc))
    except errors.ResponseValidationError as exc:
        return _fail(5, str(exc))
    except errors.FotaError as exc:
        return _fail(1, str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
