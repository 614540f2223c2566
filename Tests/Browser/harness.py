"""Real processes for the browser tests: the carddesk-server binary, the carddesk agent on a reader folder, and
headless Chromium driven through chromedriver. Nothing is mocked."""

import json
import os
import signal
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BIN = os.environ.get("CARDDESK_BIN") or subprocess.run(
    ["swift", "build", "--show-bin-path"], capture_output=True, text=True, check=True
).stdout.strip()
SERVER = os.path.join(BIN, "carddesk-server")
CLIENT = os.path.join(BIN, "carddesk")
SCREENSHOTS = os.environ.get("CARDDESK_SCREENSHOTS") or os.path.join(
    os.path.dirname(__file__), "..", "..", ".build", "browser-screenshots"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}{result.stdout}")
    return result


def wait_until(predicate, seconds=20, interval=0.05, what="condition"):
    from selenium.common.exceptions import WebDriverException
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except WebDriverException:
            value = None  # the page is being replaced (stale or detached nodes): look again
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def add_user(server, user_id, given, family, roles, email=None, mobile=None):
    """`carddesk-server user add` on a Server's or a Cluster's store."""
    role_args = [a for role in roles for a in ("--role", role)]
    contact_args = (["--email", email] if email else []) + (["--mobile", mobile] if mobile else [])
    server.command("user", "add", "--id", user_id, "--given", given, "--family", family, "--org", "RBQ", *role_args, *contact_args)


def issue_card(server, user_id, path, passcode, expires_in_days=None):
    """`carddesk-server card issue` of a virtual card, the passcode on standard input."""
    args = ["card", "issue", "--user", user_id, "--virtual", path, "--key-algorithm", "p256", "--public-url", server.url]
    if expires_in_days is not None:
        args += ["--expires-in-days", str(expires_in_days)]
    server.command(*args, input=passcode + "\n")


class Server:
    """carddesk-server serve on free ports, with its own data folder."""

    def __init__(self, folder, bridge_port, extra_arguments=(), clock_ahead_days=0):
        """`clock_ahead_days`: the server runs that many days in the future (libfaketime), so that certificates issued
        for a day are expired for it: the only way a real server sees an expired card without waiting."""
        self.folder = folder
        self.data = os.path.join(folder, "data")
        self.port = free_port()
        self.bridge_port = bridge_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(folder, "server.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, CARDDESK_LOG_LEVEL="debug", CARDDESK_HELP_IT_PHONE="IT support 0300 123 4567",
                   CARDDESK_HELP_REGISTRATION_AUTHORITY="Registration Authority, Room 4, 0300 765 4321")
        launcher = []
        if clock_ahead_days:
            launcher = ["faketime", "-f", f"+{clock_ahead_days}d"]
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        self.process = subprocess.Popen(
            [*launcher, SERVER, "serve", "--data", self.data, "--port", str(self.port), "--agent-port", str(bridge_port), "--no-demo",
             *extra_arguments],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
            # Its own process group: under faketime the server is the launcher's child, and stopping only the
            # launcher left the server running after the tests.
            start_new_session=True,
        )
        wait_until(self.healthy, seconds=60, what="the server to start")

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def command(self, *args, **kwargs):
        return run([SERVER, *args, "--data", self.data], **kwargs)

    def add_user(self, user_id, given, family, roles, email=None, mobile=None):
        add_user(self, user_id, given, family, roles, email, mobile)

    def issue_card(self, user_id, path, passcode, expires_in_days=None):
        issue_card(self, user_id, path, passcode, expires_in_days)

    def sqlite(self, sql):
        return run(["sqlite3", os.path.join(self.data, "carddesk.sqlite"), sql]).stdout.strip()

    def stop(self):
        # The whole group: the server, and the faketime launcher when there is one.
        # (A server under faketime does not finish its graceful stop: it is killed after 10 s.)
        group = self.process.pid
        try:
            os.killpg(group, signal.SIGTERM)
            try:
                wait_until(lambda: self._stopped(group), seconds=10, what="the server to stop")
            except AssertionError:
                os.killpg(group, signal.SIGKILL)
                wait_until(lambda: self._stopped(group), seconds=10, what="the server to be killed")
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        self.log.close()

    def _stopped(self, group):
        # The launcher reaped (a zombie still counts as a member of its group), and nothing left in the group.
        if self.process.poll() is None:
            return False
        try:
            os.killpg(group, 0)
            return False
        except ProcessLookupError:
            return True


class Agent:
    """carddesk agent on a reader folder, or (pcsc=True) on PC/SC with the card put into vsmartcard's vpcd reader by
    `carddesk card connect`; the test types at its terminal. $BROWSER records the URL it is given."""

    def __init__(self, folder, server, bridge_port, pcsc=False, second_reader=False):
        """`second_reader`: an RA desk's agent, with a second reader folder for the card holder's card."""
        self.folder = folder
        self.pcsc = pcsc
        self.connection = None
        self.reader = os.path.join(folder, "reader")
        os.makedirs(self.reader, exist_ok=True)
        self.second_reader = os.path.join(folder, "second-reader") if second_reader else None
        if self.second_reader:
            os.makedirs(self.second_reader, exist_ok=True)
        self.browser_log = os.path.join(folder, "browser-urls.txt")
        browser = os.path.join(folder, "browser.sh")
        with open(browser, "w") as f:
            f.write(f"#!/bin/sh\necho \"$1\" >> {self.browser_log}\n")
        os.chmod(browser, 0o755)
        self.output_path = os.path.join(folder, "agent.log")
        self.output = open(self.output_path, "w")
        source = ["--pcsc", "Virtual PCD 00 00"] if pcsc else ["--reader", self.reader]
        if self.second_reader:
            source += ["--subject-reader", self.second_reader]
        self.process = subprocess.Popen(
            [CLIENT, "agent", *source, "--server", server.url, "--bridge-port", str(bridge_port)],
            stdin=subprocess.PIPE, stdout=self.output, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, BROWSER=browser),
        )
        self.wait_for("Bridge for the web pages on")

    @property
    def text(self):
        with open(self.output_path) as f:
            return f.read()

    def wait_for(self, needle, count=1, seconds=20):
        wait_until(lambda: self.text.count(needle) >= count, seconds=seconds,
                   what=f'the agent to say "{needle}" ({count}x); it said:\n{self.text}')

    def type(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def insert(self, card):
        if not self.pcsc:
            run([CLIENT, "card", "insert", card, "--reader", self.reader])
            return
        # The card goes into vpcd's reader and stays until `remove`; pcscd shows it within a second.
        self.connection = subprocess.Popen([CLIENT, "card", "connect", card], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: vpcd_card_present(), seconds=15, what="the card in vpcd's reader")

    def remove(self):
        if not self.pcsc:
            run([CLIENT, "card", "remove", "--reader", self.reader])
            return
        if self.connection is not None:
            self.connection.terminate()
            self.connection.wait(timeout=10)
            self.connection = None
        wait_until(lambda: not vpcd_card_present(), seconds=10, what="the reader to be empty")

    def insert_second(self, card):
        """The card holder's card into the RA desk's second reader."""
        run([CLIENT, "card", "insert", card, "--reader", self.second_reader])

    def remove_second(self):
        run([CLIENT, "card", "remove", "--reader", self.second_reader])

    def empty_reader(self):
        """Takes out whatever card an earlier (failed) test left in."""
        if self.pcsc:
            if self.connection is not None:
                self.remove()
        elif any(name.endswith(".json") for name in os.listdir(self.reader)):
            self.remove()

    def opened_urls(self):
        if not os.path.exists(self.browser_log):
            return []
        with open(self.browser_log) as f:
            return [line.strip() for line in f if line.strip()]

    def stop(self):
        if self.connection is not None:
            self.remove()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.output.close()


def vpcd_card_present():
    listing = subprocess.run(["opensc-tool", "-l"], capture_output=True, text=True).stdout
    return any("Yes" in line and "Virtual PCD 00 00" in line for line in listing.splitlines())


def chromium(javascript=True, extra_arguments=()):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,900", "--no-first-run", *extra_arguments):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


def visible(driver, element_id, seconds=20):
    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(EC.visibility_of_element_located((By.ID, element_id)))


def visible_text(driver, element_id, expected, seconds=20):
    """Waits until the element is shown and holds `expected`, and answers its text. After a form is sent the old page
    (with an older message under the same id) can still be in place, and its nodes vanish while being read: such a
    read counts as not yet, never as a failure."""
    seen = []

    def shown(d):
        try:
            element = d.find_element(By.ID, element_id)
            text = element.text if element.is_displayed() else ""
        except WebDriverException:
            return False
        seen[:] = [text]
        return text if expected in text else False

    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.05).until(shown)
    except TimeoutException:
        raise AssertionError(f"#{element_id} never showed {expected!r} within {seconds} s; it last read {seen[-1] if seen else None!r}")


def screenshot(driver, name):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS, name + ".png"))


def axe_core_script():
    """axe-core 4.x: the copy inside axe-playwright-python (installed without Playwright), which is current; the one
    axe-selenium-python bundles is 3.1 and misjudges valid markup."""
    import importlib.util
    spec = importlib.util.find_spec("axe_playwright_python")
    if spec is None:
        raise AssertionError("pip install --no-deps axe-playwright-python (it carries axe-core 4)")
    return os.path.join(spec.submodule_search_locations[0], "axe.min.js")


def serious_accessibility_violations(driver):
    from axe_selenium_python import Axe
    axe = Axe(driver, script_url=axe_core_script())
    axe.inject()
    results = axe.run()
    return [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]


def requests_sent(driver):
    """Every request the page sent, from Chromium's own network log: (url, body)."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            request = message["params"]["request"]
            sent.append((request["url"], request.get("postData", "")))
    return sent


def http(method, url, headers=None, body=None):
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def temporary_folder(name):
    return tempfile.mkdtemp(prefix=f"carddesk-browser-{name}-")


class Cluster:
    """Two (or more) carddesk-server instances on one PostgreSQL behind haproxy, started by scripts/cluster-start on a
    fresh database of the suite's PostgreSQL ($CARDDESK_TEST_POSTGRES_URL, which scripts/test starts). Offers what
    Server offers to the tests, with `url` being haproxy's."""

    def __init__(self, folder, bridge_port, instances=2):
        base = os.environ.get("CARDDESK_TEST_POSTGRES_URL")
        if not base:
            raise AssertionError("CARDDESK_TEST_POSTGRES_URL names no PostgreSQL server (scripts/test starts one)")
        name = "carddesk_browser_cluster_" + os.path.basename(folder).rsplit("-", 1)[-1].lower()
        run(["psql", base, "-q", "-c", f"CREATE DATABASE {name}"])
        parsed = urllib.parse.urlsplit(base)
        self.database_url = urllib.parse.urlunsplit(parsed._replace(path="/" + name))
        self.bridge_port = bridge_port
        # Every instance gets the same settings from the environment: the agent's bridge port for the pages.
        self.environment = dict(os.environ, CARDDESK_SERVER_BIN=SERVER, CARDDESK_AGENT_BRIDGE_PORT=str(bridge_port),
                                CARDDESK_LOG_LEVEL="debug")
        script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts")
        started = run([os.path.join(script, "cluster-start"), "--instances", str(instances), "--database-url", self.database_url],
                      env=self.environment)
        values = dict(line[len("export "):].split("=", 1) for line in started.stdout.splitlines() if line.startswith("export "))
        self.url = values["CARDDESK_CLUSTER_URL"].strip("'")
        self.directory = values["CARDDESK_CLUSTER_DIR"].strip("'")
        self.data = os.path.join(self.directory, "data")
        self.stop_script = os.path.join(script, "cluster-stop")

    def pid(self, instance):
        with open(os.path.join(self.directory, f"instance-{instance}.pid")) as f:
            return int(f.read().strip())

    def log(self, instance):
        with open(os.path.join(self.directory, f"instance-{instance}.log")) as f:
            return f.read()

    def kill(self, instance):
        """SIGKILL: the instance ends mid-whatever, as in a crash."""
        pid = self.pid(instance)
        os.kill(pid, 9)

        def ended():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split()[2] == "Z"  # a zombie: dead, its parent not yet told
            except FileNotFoundError:
                return True

        wait_until(ended, what=f"instance {instance} to end")

    def restart(self, instance):
        run(["bash", os.path.join(self.directory, "instance.sh"), str(instance)], env=self.environment)

    def command(self, *args, **kwargs):
        return run([SERVER, *args, "--data", self.data, "--database-url", self.database_url], **kwargs)

    def add_user(self, user_id, given, family, roles):
        add_user(self, user_id, given, family, roles)

    def issue_card(self, user_id, path, passcode, expires_in_days=None):
        issue_card(self, user_id, path, passcode, expires_in_days)

    def sql(self, query):
        return run(["psql", self.database_url, "-tA", "-c", query]).stdout.strip()

    def stop(self):
        subprocess.run([self.stop_script, self.directory], capture_output=True, timeout=60)


class BrowserTestCase(unittest.TestCase):
    """What the browser test classes share: their Chromium, agent and server stopped after the class (whichever
    they started), and the axe-core check of a page."""
    driver = agent = server = None

    @classmethod
    def tearDownClass(cls):
        for stop in (cls.driver and cls.driver.quit, cls.agent and cls.agent.stop, cls.server and cls.server.stop):
            if stop:
                stop()

    def check_accessibility(self, page):
        violations = serious_accessibility_violations(self.driver)
        self.assertEqual([], [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in violations], page)


class Inbox:
    """aiosmtpd handler (a real SMTP server for the tests): keeps every message it is given."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf8", errors="replace")))
        return "250 OK"

    def codes(self):
        """The 6-digit code in each message's body, in order."""
        return [re.search(r"\b(\d{6})\b", body.split("\r\n\r\n", 1)[-1]).group(1) for _, body in self.messages]

    def recipients(self):
        return sorted(to for tos, _ in self.messages for to in tos)
