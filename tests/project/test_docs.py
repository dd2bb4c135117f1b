"""The documentation site builds with `mkdocs build --strict` (what `nox -s docs` runs), its guides are the
README's sections, and its API reference is generated from the docstrings."""

from __future__ import annotations

import html
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fota_callbacks as fota
from tests.support import ROOT

DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _readme_sections() -> list[str]:
    without_code = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    return re.findall(r"^## (.+)$", without_code, re.MULTILINE)


def _build(site: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    outcome = _build(site)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    return site


def test_every_readme_section_is_a_page_of_the_site() -> None:
    included = {
        match.group(1)
        for page in DOCS.rglob("*.md")
        for match in re.finditer(r"^<!-- readme: #+ (.+?) -->$", page.read_text(encoding="utf-8"), re.MULTILINE)
    }
    assert set(_readme_sections()) == included


def test_the_guides_show_the_readme_text(site: Path) -> None:
    errors = (site / "guides" / "errors" / "index.html").read_text(encoding="utf-8")
    assert '<h1 id="errors">Errors' in errors
    assert "FotaV2ResultException" in errors
    home = (site / "index.html").read_text(encoding="utf-8")
    assert '<h2 id="quickstart">Quickstart' in home
    assert '<h2 id="install">Install' in home


def test_links_to_repository_files_point_at_their_pages(site: Path) -> None:
    transports = (site / "guides" / "transports" / "index.html").read_text(encoding="utf-8")
    assert 'href="../benchmarks/#issue-25-the-sdks-own-cost-and-where-the-rest-goes"' in transports
    assert (site / "guides" / "benchmarks" / "index.html").is_file()


def test_the_api_reference_comes_from_the_docstrings(site: Path) -> None:
    client = (site / "reference" / "client" / "index.html").read_text(encoding="utf-8")
    first_line = (fota.FotaCallbacksClient.__doc__ or "").strip().splitlines()[0]
    assert first_line
    assert first_line in client
    assert 'id="fota_callbacks.FotaCallbacksClient.with_options"' in client
    for version in ("v2", "v3"):  # methods inherited from the shared controller are listed too
        controller = f"fota_callbacks.{version}.SoftwareManagementCallbacks{version.upper()}Controller"
        for method in ("list_registered_callbacks", "register_callback", "update_callback", "deregister_callback"):
            assert f'id="{controller}.{method}"' in client


def _signature(page: str, anchor: str) -> str:
    """The text of the signature block under the heading `anchor` of a reference page."""
    start = page.index('class="doc-signature', page.index(f'id="{anchor}"'))
    block = page[page.index(">", start) + 1 : page.index("</code></pre>", start)]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", block)).split())
    return re.sub(r"\s+(?=[(,:)])|(?<=\()\s+", "", text).replace(",)", ")")  # as one line, no magic comma


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_the_v2_and_v3_reference_shows_their_own_models(site: Path, version: str) -> None:
    """V2 and V3 are type arguments of one shared controller: their reference names their models, not its TypeVars."""
    client = (site / "reference" / "client" / "index.html").read_text(encoding="utf-8")
    controller = f"fota_callbacks.{version}.SoftwareManagementCallbacks{version.upper()}Controller"
    v = version.upper()
    summary = "CallbackSummary" if version == "v2" else "FotaV3CallbackSummary"
    expected = {
        "list_registered_callbacks": f"list_registered_callbacks(account: str) -> {summary}",
        "register_callback": f"register_callback(account: str, body: Fota{v}CallbackRegistrationRequest) "
        f"-> Fota{v}CallbackRegistrationResult",
        "update_callback": f"update_callback(account: str, body: Fota{v}CallbackRegistrationRequest) "
        f"-> Fota{v}CallbackRegistrationResult",
        "deregister_callback": f"deregister_callback(account: str) -> Fota{v}SuccessResult",
        "ensure_callback": f"ensure_callback(account: str, body: Fota{v}CallbackRegistrationRequest) -> EnsureResult",
    }
    for method, signature in expected.items():
        assert _signature(client, f"{controller}.{method}") == signature
    section = client[client.index(f'id="{controller}"') :]
    section = section[: section.index('class="doc doc-object doc-class"', 1)]
    for internal in ("SummaryT", "RequestT", "ResultT", "SuccessT", "__init_subclass__", "Pipeline"):
        assert internal not in section, internal


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    base = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config.write_text(
        re.sub(r"(?ms)^nav:.*", "", base)
        .replace("docs_dir: docs", f"docs_dir: {docs}")
        .replace("docs/hooks/readme.py", str(DOCS / "hooks" / "readme.py"))
        .replace("  - css/extra.css\n", ""),
        encoding="utf-8",
    )
    outcome = _build(tmp_path / "site", config)
    assert outcome.returncode != 0
    assert "missing.md" in outcome.stdout + outcome.stderr


@pytest.mark.parametrize(
    ("page", "module"),
    [
        ("inbox", "fota_callbacks.inbox"),
        ("fastapi", "fota_callbacks.integrations.fastapi"),
        ("receiver", "fota_callbacks.receiver"),
        ("asgi", "fota_callbacks.integrations.asgi"),
        ("aiohttp", "fota_callbacks.integrations.aiohttp"),
        ("django", "fota_callbacks.integrations.django"),
        ("testing", "fota_callbacks.testing"),
        ("callbacks", "fota_callbacks.callbacks"),
    ],
)
def test_a_module_page_says_its_intro_once(site: Path, page: str, module: str) -> None:
    # The module docstring renders under the page title; the page's own text must not say the same again.
    summary = (importlib.import_module(module).__doc__ or "").strip().splitlines()[0].replace("`", "")
    rendered = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
    article = rendered[rendered.index("<article") : rendered.index("</article>")]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", article)).split())
    text = re.sub(r"\s+(?=[,.:;)])|(?<=\()\s+", "", text)  # the spaces left where inline tags were
    assert text.count(summary) == 1, text[:400]
    words = re.findall(r"[\w-]+", summary)
    page_intro = re.findall(r"[\w-]+", text[: text.index(summary)])  # the page's own text, before the docstring
    runs = {tuple(words[i : i + 5]) for i in range(len(words) - 4)}
    repeated = [
        " ".join(page_intro[i : i + 5]) for i in range(len(page_intro) - 4) if tuple(page_intro[i : i + 5]) in runs
    ]
    assert repeated == []


def test_what_users_read_points_to_no_file_outside_the_repository() -> None:
    # The project's design notes (wire.md, API.md) are not shipped: docs and docstrings say what they mean instead.
    readable = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "pyproject.toml", *DOCS.rglob("*.md")]
    readable += [*(ROOT / "fota_callbacks").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]
    pointers = re.compile(r"\b(?:wire|API)\.md\b|\.\./shared\b")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in readable
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pointers.search(line)
    ]
    assert found == []


def test_the_example_app_is_a_page_linked_from_the_receiving_guide(site: Path) -> None:
    page = (site / "examples" / "fastapi_app" / "index.html").read_text(encoding="utf-8")
    code = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "def _allowed_ips(setting: str)" in code  # the file itself, as a code block
    assert '<span class="sd">"""A FOTA callback listener' in page  # highlighted as Python: its docstring
    receiving = (site / "guides" / "receiving" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../examples/fastapi_app/"' in receiving
    assert "[examples/fastapi_app.py](examples/fastapi_app.py)" in README


def test_the_observability_picture_is_drawn_from_a_real_run(tmp_path: Path) -> None:
    """docs/tools/trace_waterfall.py runs the flow the README's picture shows (its HTML; the PNG needs Chromium)."""
    page = tmp_path / "trace.html"
    outcome = subprocess.run(
        [sys.executable, "docs/tools/trace_waterfall.py", "--html", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome.returncode == 0, outcome.stderr
    text = html.unescape(page.read_text(encoding="utf-8"))
    for shown in (
        "SERVER</span> fota.callback.receive",
        "CONSUMER</span> fota.callback.handle",
        "CLIENT</span> GET /api/fota/v2/callbacks/{account}",
        "fota.inbox.outcome=retry",
        "fota.inbox.outcome=done",
        "linked to fota.callback.receive of trace 1",
        "exception: RuntimeError: the fleet database timed out",
    ):
        assert shown in text, shown
    assert "s3cret" not in text  # the callback's password: no body is traced
    assert "](docs/images/callback-trace.png)" in README
    assert (ROOT / "docs" / "images" / "callback-trace.png").stat().st_size > 10_000
