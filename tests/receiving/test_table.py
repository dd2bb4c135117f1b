"""The table of callback requests (cases.py) through every way in (ways.py): the same answer, byte for byte, and
the same handler calls and inbox puts, except where the table says otherwise for a way, and why."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest

from tests.receiving.cases import CASES, ENDPOINTS, NONCE, Answer, Case
from tests.receiving.ways import WAYS, HttpWay, Seen, Way

pytestmark = pytest.mark.anyio

_tokens = itertools.count(1)


def _params() -> list[object]:
    params: list[object] = []
    for name, way in WAYS.items():  # the classes: what they take is a class attribute
        for case in CASES:
            deviation = case.deviations.get(name)
            if case.endpoint not in way.endpoints or (deviation is not None and deviation.answers is None):
                continue
            params.extend(pytest.param(name, b, case, id=f"{name}-{b}-{case.id}") for b in way.backends)
    return params


@pytest.fixture(scope="module")
def way(request: pytest.FixtureRequest) -> Iterator[Way]:
    made = WAYS[request.param]()
    if isinstance(made, HttpWay):
        with made.serving():
            yield made
    else:
        yield made


def _check(seen: Seen, answer: Answer) -> None:
    assert (seen.status, seen.content_type, seen.allow) == (answer.status, answer.content_type, answer.allow)
    if answer.text is not None:
        assert seen.body.decode() == answer.text
    else:
        assert seen.body == json.dumps(answer.json, separators=(",", ":")).encode()  # compact JSON, exactly


def _printed_by_listen(raw: dict[str, object]) -> dict[str, object]:
    return {**raw, "password": "***"} if "password" in raw else raw


@pytest.mark.parametrize(("way", "anyio_backend", "case"), _params(), indirect=["way"], scope="module")
async def test_every_way_in_answers_as_the_table_says(way: Way, case: Case) -> None:
    token = f"{next(_tokens):0{len(NONCE)}d}"
    bodies = [request.body.replace(NONCE.encode(), token.encode()) for request in case.requests]
    deviation = case.deviations.get(way.name)
    answers = case.answers if deviation is None or deviation.answers is None else deviation.answers
    inbox = way.inbox(case.endpoint)
    pending_before = (await inbox.stats()).pending if inbox is not None else 0
    way.before_case()

    seen = [await way.post(case.endpoint, request, body) for request, body in zip(case.requests, bodies, strict=True)]

    for one, answer in zip(seen, answers, strict=True):
        _check(one, answer)
    expected = [json.loads(bodies[index]) for index in case.handled]
    if way.name == "listen":
        expected = [_printed_by_listen(raw) for raw in expected]
    assert await way.handled(case.endpoint, len(case.handled)) == expected
    if inbox is not None:
        assert inbox.puts == [(bodies[index], outcome) for index, outcome in case.stored]
        stored = sum(outcome == "stored" for _, outcome in case.stored)
        assert (await inbox.stats()).pending == pending_before + stored
    else:
        assert case.stored == ()


def test_the_table_covers_every_endpoint_and_every_way() -> None:
    assert {case.endpoint for case in CASES} == set(ENDPOINTS)
    for case in CASES:
        assert set(case.deviations) <= set(WAYS), case.id
        assert all(deviation.why for deviation in case.deviations.values())
    ways_run = {param.values[0] for param in _params()}  # type: ignore[attr-defined]
    assert ways_run == set(WAYS)
