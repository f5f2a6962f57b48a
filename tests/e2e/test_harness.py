"""The browser checks themselves: they must catch what they claim to catch (else every journey passes vacuously)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_checks_catch_csp_violations_console_errors_and_axe_failures(tab: Tab) -> None:
    page = tab.goto("/accounts/login/")
    assert tab.problems() == []
    # An inline script (blocked by the CSP), an error logged by the page, an image without text.
    page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__ran = true';
            document.body.appendChild(s);
            console.error('boom');
            const img = document.createElement('img');
            img.src = '/static/img/favicon.svg';
            document.querySelector('main').appendChild(img);
        }"""
    )
    assert page.evaluate("() => window.__ran === undefined"), "the CSP let an inline script run"
    with pytest.raises(AssertionError, match="image-alt"):
        tab.check()
    page.wait_for_function("() => window.__e2eCsp.length > 0")  # the report is dispatched as a task
    problems = tab.problems()
    assert any(p.startswith("CSP violation") and "script-src" in p for p in problems), problems
    assert any("console error: boom" in p for p in problems), problems
    # A page reached without the axe check is reported too.
    page.goto(tab.url("/accounts/signup/"))
    assert "visited but not checked with axe: /accounts/signup/" in tab.problems()
    # Cleared so that this deliberate breakage does not fail the test at teardown.
    tab.console_errors.clear()
    tab.csp_violations.clear()
    tab.check()
