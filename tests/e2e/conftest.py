"""Browser journeys: Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

The live server runs in a thread of this process on PostgreSQL and Redis (transactional database,
so every request commits and `on_commit` hooks deliver the outbox to `mail.outbox`). It is reached
as http://localhost:<port>: a secure context for WebAuthn, and Chromium accepts `Secure` cookies
from localhost, so the production cookie flags stay on.

Every page a journey lands on goes through `Tab.check()`: axe-core (vendored, see
tests/e2e/vendor/) must report no serious or critical violation. Console errors, uncaught page
errors and CSP violations are collected for the whole test and fail it at teardown, as does a
page that was visited but never checked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
BLOCKING_IMPACTS = ("serious", "critical")
# Auto-waiting limits: generous, because the machine running the suite may be busy (no sleeps anywhere).
DEFAULT_TIMEOUT_MS = 15_000
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)

# Runs before any page script (init scripts are not page scripts: CSP does not apply to them).
# Reports every CSP violation of the document to the test through an exposed binding.
CSP_LISTENER = """
window.__e2eCsp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const report = {
    page: String(document.location.href), directive: e.violatedDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample,
  };
  window.__e2eCsp.push(report);
  window.__e2eCspViolation(report);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module; fails loudly (never skips) when it cannot start."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser journeys need Debian's Chromium. "
            "Run `bash scripts/ensure-chromium.sh` (or `make e2e-deps`).",
            pytrace=False,
        )
    # The sync API keeps an asyncio loop registered on the main thread; the ORM calls the tests
    # make in between browser steps are ordinary synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            try:
                instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            except PlaywrightError as exc:
                pytest.fail(f"Chromium at {CHROMIUM} could not start: {exc}", pytrace=False)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def base_url(live_server: Any, settings: Any) -> str:
    """http://localhost:<port>, with the settings that depend on the origin pointing at it."""
    port = urlsplit(live_server.url).port
    origin = f"http://localhost:{port}"
    settings.WEBAUTHN_RP_ID = "localhost"
    settings.WEBAUTHN_ORIGIN = origin
    settings.PUBLIC_BASE_URL = origin
    return origin


@dataclass
class Tab:
    """A page plus everything it reported: console errors, page errors, CSP violations, axe runs."""

    page: Page
    base_url: str
    name: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict[str, Any]] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    allowed_console: list[re.Pattern[str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str) -> Page:
        self.page.goto(self.url(path))
        return self.check()

    @property
    def path(self) -> str:
        return urlsplit(self.page.url).path

    def check(self) -> Page:
        """Runs axe-core on the current document: no serious or critical violation."""
        page = self.page
        page.wait_for_load_state("load")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # Evaluated through DevTools, not a <script> tag: the page's CSP stays strict.
            page.evaluate(AXE_JS.read_text(encoding="utf-8"))
        result = page.evaluate(
            """async () => {
                const r = await window.axe.run(document, {resultTypes: ['violations', 'incomplete']});
                const found = r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
                // axe files text drawn in its own background colour (1:1) under "incomplete":
                // it is invisible, so it counts as a serious contrast failure here.
                for (const v of r.incomplete.filter(v => v.id === 'color-contrast')) {
                    const nodes = v.nodes.filter(n => n.any.some(c => c.data && c.data.messageKey === 'equalRatio'));
                    if (nodes.length) {
                        found.push({id: 'color-contrast', impact: 'serious',
                            help: 'Text is the colour of its background',
                            nodes: nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.html)});
                    }
                }
                return found;
            }"""
        )
        blocking = [v for v in result if v["impact"] in BLOCKING_IMPACTS]
        assert not blocking, f"axe-core on {page.url}:\n" + "\n".join(
            f"- [{v['impact']}] {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in blocking
        )
        self.checked.add(self.path)
        return page

    def exempt_from_axe(self, reason: str) -> None:
        """The current page is knowingly not held to axe (third-party UI); the reason stays in the test."""
        assert reason
        self.checked.add(self.path)

    def allow_console(self, pattern: str) -> None:
        """An expected console error (e.g. Chromium logging the 429 of a lockout page)."""
        self.allowed_console.append(re.compile(pattern))

    def screenshot(self, name: str, *, top: bool = True) -> None:
        """docs/screenshots/<name>.png when E2E_SCREENSHOTS=1 (`make screenshots`); plain runs leave the tree alone."""
        if os.environ.get("E2E_SCREENSHOTS", "") not in ("1", "true", "yes"):
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # No focus ring or caret in the pictures; the page from its top unless told otherwise.
        self.page.evaluate("() => document.activeElement && document.activeElement.blur()")
        if top:
            self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled", caret="hide")

    def problems(self) -> list[str]:
        out: list[str] = []
        for text in self.console_errors:
            if not any(p.search(text) for p in self.allowed_console):
                out.append(f"console error: {text}")
        out += [f"page error: {e}" for e in self.page_errors]
        out += [f"CSP violation: {v}" for v in self.csp_violations]
        unchecked = sorted({p for p in self.visited if p not in self.checked})
        out += [f"visited but not checked with axe: {p}" for p in unchecked]
        return out


class Browsing:
    """Opens tabs, each in a fresh browser context (its own cookies), and audits them at the end."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.tabs: list[Tab] = []

    def new_tab(self, name: str = "tab") -> Tab:
        context = self.browser.new_context(viewport=VIEWPORT, base_url=self.base_url, locale="en-GB")
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        tab = Tab(page=page, base_url=self.base_url, name=name)

        def on_csp_violation(report: dict[str, Any]) -> None:
            tab.csp_violations.append(report)

        context.expose_function("__e2eCspViolation", on_csp_violation)
        context.add_init_script(CSP_LISTENER)

        def on_console(msg: Any) -> None:
            if msg.type == "error":
                location = msg.location or {}
                tab.console_errors.append(f"{msg.text} ({location.get('url', '')}:{location.get('lineNumber', '')})")

        def on_navigated(frame: Any) -> None:
            if frame == page.main_frame and frame.url.startswith(self.base_url):
                tab.visited.append(urlsplit(frame.url).path)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: tab.page_errors.append(str(exc)))
        page.on("framenavigated", on_navigated)
        self.tabs.append(tab)
        return tab

    def close(self) -> list[str]:
        problems: list[str] = []
        for tab in self.tabs:
            problems += [f"[{tab.name}] {p}" for p in tab.problems()]
        for context in self.contexts:
            context.close()
        return problems


@pytest.fixture
def browsing(browser: Browser, base_url: str) -> Iterator[Browsing]:
    b = Browsing(browser, base_url)
    yield b
    problems = b.close()
    assert not problems, "Browser problems:\n" + "\n".join(problems)


@pytest.fixture
def tab(browsing: Browsing) -> Tab:
    return browsing.new_tab("main")


@pytest.fixture
def emails() -> Callable[..., list[Any]]:
    """Messages delivered so far (the outbox is flushed first), optionally only those to `to`."""
    from notifications.tasks import outbox_resend_pending

    def _emails(to: str | None = None) -> list[Any]:
        outbox_resend_pending()
        return [m for m in mail.outbox if to is None or to in m.to]

    return _emails
