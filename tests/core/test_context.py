from __future__ import annotations

from core import context


def test_updates_outside_a_request_do_not_leak_into_later_work():
    assert context.current().request_id == ""
    context.update(user_public_id="someone", country="DE")
    assert context.current().user_public_id == ""
    assert context.current().country == ""


def test_updates_inside_a_request_stay_in_that_request():
    token = context.set_context(context.RequestContext(request_id="r1", ip="203.0.113.1"))
    try:
        context.update(country="NL")
        assert context.current().country == "NL"
    finally:
        context.reset_context(token)
    assert context.current().country == ""
