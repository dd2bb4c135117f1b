"""The pytest plugin as a user meets it: a test file that imports nothing from the plugin, run by pytest in a
fresh process, on asyncio and on trio."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
    import anyio
    import httpx
    import pytest

    import fota_callbacks as fota

    ACCOUNT = "0000123456-00001"
    URL = "https://listener.example/fota"


    async def test_client_on_the_fake(fota_client, fake_thingspace):
        await fota_client.v3.register_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url=URL))
        assert fake_thingspace.callbacks(ACCOUNT).v3 == URL
        assert [r.operation for r in fake_thingspace.requests] == ["token", "login", "register_callback"]


    async def test_retries_do_not_wait(fota_client, fake_thingspace):
        fault = fota.testing.Fault.status(503, headers={"Retry-After": "30"})
        fake_thingspace.inject(fault, times=2, operation="list_registered_callbacks")
        with anyio.fail_after(10):  # two real waits would take a minute
            response = await fota_client.v1.with_raw_response.list_registered_callbacks(ACCOUNT)
        assert response.retries_taken == 2 and response.data == []


    async def test_each_test_gets_a_fresh_fake(fota_client, fake_thingspace):
        assert fake_thingspace.callbacks(ACCOUNT).v3 is None
        assert (await fota_client.v3.list_registered_callbacks(ACCOUNT)).url is None


    async def test_runs_on_each_backend(fota_client, anyio_backend):
        import sniffio

        assert sniffio.current_async_library() == anyio_backend


    async def test_the_fake_over_http(fake_thingspace_url, fake_thingspace, fota_client):
        assert fake_thingspace_url.startswith("http://127.0.0.1:")
        async with fota.FotaCallbacksClient(
            base_url=fake_thingspace_url, client_id="id", client_secret="secret", username="u", password="p"
        ) as over_http:
            await over_http.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url=URL))
        # the same fake that fota_client talks to in-process
        assert (await fota_client.v2.list_registered_callbacks(ACCOUNT)).url == URL


    def test_a_sync_test_can_use_the_url(fake_thingspace_url):
        answer = httpx.get(f"{fake_thingspace_url}/api/fota/v2/callbacks/{ACCOUNT}")
        assert answer.status_code == 401
"""

STRICT = """
    [pytest]
    filterwarnings = error
    addopts = -p no:cacheprovider
"""


def test_the_plugin_is_registered_by_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("fota_callbacks") == "fota_callbacks.testing.pytest_plugin"


def test_a_users_tests_run_on_asyncio_and_trio(pytester: pytest.Pytester) -> None:
    pytester.makeini(textwrap.dedent(STRICT))
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS))
    result = pytester.runpytest_subprocess("-v")
    # five async tests on two backends, one sync test
    result.assert_outcomes(passed=11)
    for name in ("test_client_on_the_fake", "test_retries_do_not_wait", "test_runs_on_each_backend"):
        result.stdout.fnmatch_lines([f"*{name}?asyncio? PASSED*", f"*{name}?trio? PASSED*"])


def test_a_users_anyio_backend_fixture_picks_the_backend(pytester: pytest.Pytester) -> None:
    pytester.makeini(textwrap.dedent(STRICT))
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "trio"
        """
    )
    pytester.makepyfile(
        test_user="""
        import sniffio

        async def test_on_trio_only(fota_client):
            assert sniffio.current_async_library() == "trio"
            assert (await fota_client.v2.list_registered_callbacks("0000123456-00001")).url is None
        """
    )
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_on_trio_only PASSED*"])


def test_a_failing_user_test_fails_and_the_server_still_stops(pytester: pytest.Pytester) -> None:
    pytester.makeini(textwrap.dedent(STRICT))
    pytester.makepyfile(
        test_user="""
        import socket
        from urllib.parse import urlsplit

        import pytest

        PORTS = []

        def test_fails(fake_thingspace_url):
            PORTS.append(urlsplit(fake_thingspace_url).port)
            assert False, "the user's assertion"

        def test_server_was_stopped():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", PORTS[0]), timeout=5)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the user's assertion*"])


def test_fota_callbacks_testing_imports_without_pytest() -> None:
    program = (
        "import sys; sys.modules['pytest'] = None\n"  # `import pytest` now raises ImportError
        "import fota_callbacks.testing as t\n"
        "assert 'fota_callbacks.testing.pytest_plugin' not in sys.modules\n"
        "print(t.ScriptedTransport.__name__, t.FakeThingSpace.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ScriptedTransport", "FakeThingSpace"]


ALONE = """
    import httpx

    import fota_callbacks as fota

    ACCOUNT = "0000123456-00001"
    URL = "https://listener.example/fota"


    async def test_only_the_url(fake_thingspace_url):
        async with fota.FotaCallbacksClient(
            base_url=fake_thingspace_url, client_id="id", client_secret="secret", username="u", password="p"
        ) as client:
            await client.v3.register_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url=URL))
            assert (await client.v3.list_registered_callbacks(ACCOUNT)).url == URL


    async def test_only_the_fake(fake_thingspace):
        async with fake_thingspace.client() as client:
            assert (await client.v2.list_registered_callbacks(ACCOUNT)).url is None


    class TestInAClass:
        async def test_only_the_fake(self, fake_thingspace):
            fake_thingspace.seed(ACCOUNT, v2=URL)
            async with fake_thingspace.client() as client:
                assert (await client.v2.list_registered_callbacks(ACCOUNT)).url == URL


    def test_a_sync_test_stays_sync(fake_thingspace_url):
        assert httpx.get(f"{fake_thingspace_url}/api/fota/v2/callbacks/{ACCOUNT}").status_code == 401
"""

HEADER = "fota-callbacks: trio is not installed: the trio runs of async tests are skipped (pip install trio)"


def test_each_fixture_works_alone_in_an_async_test(pytester: pytest.Pytester) -> None:
    pytester.makeini(textwrap.dedent(STRICT))
    pytester.makepyfile(test_user=textwrap.dedent(ALONE))
    result = pytester.runpytest_subprocess("-v")
    # three async tests on two backends, one sync test once
    result.assert_outcomes(passed=7)
    for name in ("test_only_the_url", "test_only_the_fake", "TestInAClass::test_only_the_fake"):
        result.stdout.fnmatch_lines([f"*{name}?asyncio? PASSED*", f"*{name}?trio? PASSED*"])
    result.stdout.fnmatch_lines(["*test_a_sync_test_stays_sync PASSED*"])
    assert HEADER not in result.stdout.str()


def test_without_trio_the_header_says_trio_runs_are_skipped(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A `trio` first on the path that cannot be imported: as if trio were not installed.
    hidden = tmp_path_factory.mktemp("no-trio")
    (hidden / "trio").mkdir()
    (hidden / "trio" / "__init__.py").write_text("raise ImportError('trio is hidden by this test')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")])))
    # trio's distribution metadata is still installed, with an entry point hypothesis loads at import: skipped,
    # as it would be absent with trio uninstalled.
    monkeypatch.setenv("HYPOTHESIS_NO_PLUGINS", "1")
    pytester.makeini(textwrap.dedent(STRICT))
    pytester.makepyfile(test_user=textwrap.dedent(ALONE))
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=4)
    assert result.stdout.lines.count(HEADER) == 1
    assert "?trio?" not in result.stdout.str().replace("[trio]", "?trio?")
    result.stdout.fnmatch_lines(["*test_only_the_url?asyncio? PASSED*", "*test_only_the_fake?asyncio? PASSED*"])


def test_a_test_marked_asyncio_is_left_to_pytest_asyncio(pytester: pytest.Pytester) -> None:
    """Without pytest-asyncio installed, pytest itself refuses the async test: the plugin did not take it."""
    pytester.makeini(textwrap.dedent(STRICT).replace("filterwarnings = error", "markers = asyncio"))
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.asyncio
        async def test_for_pytest_asyncio(fake_thingspace):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-v")
    assert "test_for_pytest_asyncio[" not in result.stdout.str()
    result.assert_outcomes(failed=1)
