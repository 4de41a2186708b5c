"""The dashboard in a real headless Chromium (the system's, through its chromedriver), against
`execlab run --speed X --dashboard` (a paced replay of the shipped recording) and against
`execlab dashboard RUN` (a finished run, with its time slider)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from framework.runtime.run import run_session
from framework.spec.session import load_session

REPO = Path(__file__).resolve().parents[2]
RECORDING = REPO / "data" / "binance-spot-btcusdt-20240808.frames.gz"
# Without the background-networking flags Chromium hangs on a closed network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1800"]


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser(tmp_path):
    found = _chromium()
    if found is None:
        pytest.skip("chromium and chromedriver are not installed (scripts/setup installs the Debian packages "
                    "chromium and chromium-driver when it can)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


# What the page shows, read in one script (a live page redraws between two WebDriver calls).
PAGE_FACTS = """
const out = {machines: {}, updates: Number(document.body.dataset.updates || 0)};
for (const c of document.querySelectorAll('.machine[data-machine]')) {
  out.machines[c.dataset.machine] = {state: c.dataset.state || '', pill: c.querySelector('.state').textContent,
    lit: [...c.querySelectorAll('.diagram g.node.lit title')].map(t => t.textContent)};
}
const rows = document.querySelectorAll('tr.transition');
out.transitions = rows.length;
out.cells = rows.length ? [...rows[0].querySelectorAll('td')].map(td => td.textContent.trim()) : [];
out.mid_line = !!document.querySelector('.chart[data-metric="mid"] svg path');
out.thresholds = document.querySelectorAll('.chart .threshold').length;
out.verdict = (document.querySelector('.decision .verdict') || {}).textContent || '';
out.mode = document.getElementById('mode').textContent;
out.ended = document.getElementById('ended').textContent;
out.records = document.getElementById('records').textContent;
return out;
"""


def facts(driver) -> dict:
    return driver.execute_script(PAGE_FACTS)


def _shows_states_and_a_transition(driver) -> bool:
    f = facts(driver)
    return bool(f["machines"].get("regime", {}).get("state")) and f["transitions"] > 0


def _assert_screenshot(driver, path: Path) -> None:
    assert driver.save_screenshot(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def _assert_page_shows_the_layers(f: dict) -> None:
    assert set(f["machines"]) >= {"regime", "permission", "health"}
    for m in f["machines"].values():
        assert m["state"] and m["pill"] == m["state"]
        assert m["lit"] == [m["state"]]  # the diagram lights the current state
    time, machine, from_to, rule, guard, read = f["cells"][:6]
    assert machine in f["machines"] and "→" in from_to
    assert re.fullmatch(r"#\d+", rule) and guard and "=" in read
    assert f["mid_line"] and f["thresholds"] > 0 and f["verdict"]


def test_a_paced_replay_in_the_browser_as_it_runs(browser, serve, tmp_path):
    run = tmp_path / "run"
    served = serve(["run", "--replay", str(RECORDING), "--speed", "20", "--out", str(run), "--no-progress",
                    "--dashboard", "0"])
    browser.get(served.address())
    _wait(browser, _shows_states_and_a_transition)
    first = facts(browser)["updates"]
    _wait(browser, lambda d: facts(d)["updates"] > first + 2)  # and it keeps coming
    f = facts(browser)
    _assert_page_shows_the_layers(f)
    assert f["mode"] == "REPLAY"
    _assert_screenshot(browser, tmp_path / "replay.png")
    code, out = served.interrupt()
    assert code == 0, "".join(served.stderr)
    last = (run / "log.jsonl").read_text().splitlines()[-1]
    assert '"kind":"session_end"' in last and "stopped by SIGINT" in last


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dashboard") / "run"
    run_session(load_session(REPO / "configs" / "default.yaml"), out)
    return out


def test_a_finished_run_in_the_browser_with_its_time_slider(browser, serve, finished_run, tmp_path):
    from selenium.webdriver.common.by import By

    served = serve(["dashboard", str(finished_run), "--port", "0"])
    browser.get(served.address())
    _wait(browser, lambda d: _shows_states_and_a_transition(d) and "end of input" in facts(d)["ended"])
    f = facts(browser)
    _assert_page_shows_the_layers(f)
    assert f["mode"] == "FINISHED RUN"
    _assert_screenshot(browser, tmp_path / "run.png")

    # the slider to the start: the run as it began, before any transition
    slider = browser.find_element(By.ID, "slider")
    browser.execute_script("arguments[0].value = '0'; arguments[0].dispatchEvent(new Event('change'));", slider)
    _wait(browser, lambda d: facts(d)["records"] != f["records"] and facts(d)["transitions"] == 0)
    initial = load_session(REPO / "configs" / "default.yaml").machine_set.machine("regime").initial
    assert facts(browser)["machines"]["regime"]["state"] == initial
    browser.find_element(By.ID, "next-transition").click()
    _wait(browser, lambda d: facts(d)["transitions"] == 1)
    time_label = browser.find_element(By.ID, "slider-time").text
    assert "2024-08-08" in time_label
    code, _ = served.interrupt()
    assert code == 0, "".join(served.stderr)
