"""A person at the Prefect dashboard, in a real browser: headless Chromium from Debian's `chromium`
package, driven by Playwright, clicking and typing into the forms the dashboard draws from our
`RunInput`s.

Playwright is told never to fetch a browser of its own (the machines reach no download host), and
the browser may reach loopback only: the dashboard asks some outside hosts for things (fonts,
marketing banners) and a request left hanging must not slow a test or make it depend on the
network.

The selectors follow what a person sees: a field is found by the label above it, a button by its
name. The Prefect UI (3.9.1, its default "V1" UI) gives its inputs no accessible name, so a field
is the `.schema-form-property` whose own header carries the label.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
# What the Prefect UI shows when a request fails: a toast or a whole page.
SOMETHING_WENT_WRONG = re.compile(r"went wrong|oops", re.IGNORECASE)
RESUMED = "Flow run resumed"
# A person's patience for the dashboard to show a change (a dialog, a toast, a run suspended
# again) on a busy two-core machine; never a sleep: every wait ends as soon as the thing shows.
PATIENCE_MS = 60_000
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

# Playwright must never download a browser build (the installer is never run here either).
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def install_chromium() -> str | None:
    """Make sure Debian's Chromium is installed; None when it is, else why it could not be."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return "Chromium is not installed at /usr/bin/chromium and there is no apt-get to install it"
    if os.geteuid() != 0:
        return "Chromium is not installed at /usr/bin/chromium and installing it needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Others may be installing packages on the same machine: wait for dpkg's lock, not fail on it.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-q"]
    install = subprocess.run([*apt, "install", "-y", "chromium"], env=env, capture_output=True,
                             text=True, timeout=900, check=False)
    if install.returncode != 0:  # the package lists may be missing or stale: refresh them once
        subprocess.run([*apt, "update"], env=env, capture_output=True, timeout=600, check=False)
        install = subprocess.run([*apt, "install", "-y", "chromium"], env=env, capture_output=True,
                                 text=True, timeout=900, check=False)
    if install.returncode != 0 or not CHROMIUM.exists():
        return f"apt-get install chromium failed: {install.stderr.strip()[-300:]}"
    return None


def _loopback_only(route: Route) -> None:
    host = urlsplit(route.request.url).hostname or ""
    if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
        route.continue_()
    else:
        route.abort()


@contextmanager
def browser_context(*, viewport: tuple[int, int] = (1400, 1000),
                    webgl: bool = False) -> Iterator[BrowserContext]:
    """A fresh headless Chromium context that can reach loopback only."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # No WebGL: the run page's timeline is drawn with it, in software here, and redrawn all the
        # time: 60% of a core for a tab left open, against 10% without it (the timeline is left
        # blank; nothing else on the page needs it).
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=[] if webgl else ["--disable-3d-apis"])
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                          locale="en-GB", timezone_id="Europe/London")
            context.set_default_timeout(PATIENCE_MS)
            context.route("**/*", _loopback_only)
            yield context
        finally:
            browser.close()


@dataclass
class Dashboard:
    """The Prefect dashboard at `base_url` in one browser tab, and what it has shown: every toast,
    and every text that says something went wrong."""

    context: BrowserContext
    base_url: str
    toasts: list[str] = field(default_factory=list)
    went_wrong: list[str] = field(default_factory=list)
    page: Page = field(init=False)

    def __post_init__(self) -> None:
        # Watches the page from before the UI starts, on every page this tab loads: each toast
        # shown, and any text added anywhere that says something went wrong (a toast or a page).
        self.context.expose_binding("sbuSaw", lambda _source, kind, text: self._saw(kind, text))
        self.context.add_init_script("""
            const wrong = /went wrong|oops/i;
            function sawToast(card, tries = 0) {
              if (tries === 0 && card.dataset.sbuSeen) return;  // added again inside its transition
              card.dataset.sbuSeen = '1';
              // A toast's message is filled in after its card is added: wait for it (up to 10 s).
              const message = card.querySelector('p');
              const text = (message ? message.textContent : card.textContent).trim();
              if (!text && tries < 200) {
                setTimeout(() => sawToast(card, tries + 1), 50);
                return;
              }
              const said = (card.querySelector('.p-toast__icon--error') ? 'error: ' : '') + text;
              (window.sbuToasts = window.sbuToasts || []).push(said);
              window.sbuSaw('toast', said);
            }
            new MutationObserver((changes) => {
              for (const change of changes) {
                if (change.type === 'characterData' && wrong.test(change.target.data))
                  window.sbuSaw('wrong', change.target.data.slice(0, 300));
                for (const node of change.addedNodes) {
                  if (node.nodeType === 1) {
                    if (node.matches('.p-toast__card')) sawToast(node);
                    node.querySelectorAll('.p-toast__card').forEach(sawToast);
                  }
                  const text = node.textContent || '';
                  if (wrong.test(text)) window.sbuSaw('wrong', text.trim().slice(0, 300));
                }
              }
            }).observe(document, {childList: true, subtree: true, characterData: true});
        """)
        self.page = self.context.new_page()

    def _saw(self, kind: str, text: str) -> None:
        (self.toasts if kind == "toast" else self.went_wrong).append(text)

    # -- a run's page and its form ---------------------------------------------------------------

    def open_form(self, run_id: str, title: str) -> Locator:
        """Go to the run's page, wait until it waits for a person, press "Resume", and return the
        dialog once it shows the form titled `title` (its Markdown heading). A page showing a wait
        already answered is loaded again, as a person would refresh it."""
        from playwright.sync_api import expect

        url = f"{self.base_url}/runs/flow-run/{run_id}"
        for _attempt in range(3):
            self.page.goto(url)
            resume = self.page.get_by_role("button", name="Resume", exact=True)
            resume.click()  # waits until the run is suspended and the button shows
            dialog = self.page.locator(".p-modal__card").filter(has_text="Resume Flow Run")
            heading = dialog.get_by_role("heading", level=2)
            expect(heading).to_be_visible()
            if title in heading.inner_text():
                return dialog
            dialog.get_by_role("button", name="Close", exact=True).click()
        raise AssertionError(f"the run's form never showed {title!r}")

    def submit(self, dialog: Locator) -> str:
        """Press "Submit" and return the toast the dashboard answers with."""
        from playwright.sync_api import expect

        shown = self.page.evaluate("(window.sbuToasts || []).length")
        dialog.get_by_role("button", name="Submit", exact=True).click()
        self.page.wait_for_function("shown => (window.sbuToasts || []).length > shown", arg=shown)
        answer: str = self.page.evaluate("shown => window.sbuToasts[shown]", shown)
        if answer == RESUMED:
            expect(dialog).to_be_hidden()
        return answer


# -- filling in fields ------------------------------------------------------------------------------


def field_of(scope: Locator, label: str) -> Locator:
    """The form field whose own label reads `label` (the UI adds " (Optional)" to some)."""
    title = f"normalize-space()={_xpath_literal(label)} or " \
            f"normalize-space()={_xpath_literal(label + ' (Optional)')}"
    return scope.locator(
        "xpath=.//div[contains(concat(' ', normalize-space(@class), ' '), ' schema-form-property ')]"
        f"[./div[@class='p-label__header']//span[@class='schema-form-property__label'][{title}]]").first


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    parts = text.split("'")
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in parts) + ")"


def type_into(scope: Locator, label: str, text: str) -> None:
    """Click into the text field labelled `label` and enter `text`.

    The text goes in as one input event, as pasting does, not a key at a time: every key re-draws
    the whole form, which took a quarter of a second a key on a busy two-core machine."""
    box = field_of(scope, label).locator("textarea, input").first
    box.click()
    box.fill(text)


def choose(scope: Locator, label: str, option: str) -> None:
    """Open the drop-down labelled `label` and pick `option`.

    It is opened by its arrow: in the Prefect UI (3.9.1) a click on the box's text opens the list
    and closes it again within the same click, so a person learns to click the arrow (or press
    the space bar)."""
    from playwright.sync_api import expect

    box = field_of(scope, label)
    box.locator(".p-select-button__icon").click()
    scope.page.get_by_role("option", name=option, exact=True).click()
    expect(box.locator(".p-select-button__value")).to_have_text(option)


def pick_date(scope: Locator, label: str, day: date) -> None:
    """Open the date picker labelled `label`, type the date into its "Selected Date" box, apply."""
    from playwright.sync_api import expect

    box = field_of(scope, label)
    box.locator(".p-date-button").click()
    picker = scope.page.locator(".p-date-picker").filter(has_text="Selected Date").last
    picker.locator("input[type=date]").fill(day.isoformat())
    picker.get_by_role("button", name="Apply", exact=True).click()
    expect(box.locator(".p-date-button__value")).not_to_have_text("Select date")


def pick_tab(scope: Locator, label: str, tab: str) -> Locator:
    """Choose the tab `tab` of the choice labelled `label`; return the choice's field."""
    from playwright.sync_api import expect

    box = field_of(scope, label)
    button = box.locator(".p-button-group").first.get_by_role("button", name=tab, exact=True)
    button.click()
    expect(button).to_have_attribute("aria-selected", "true")
    return box
