"""The self-renewal journey of issue 4 in headless Chromium, end to end, with the real server, agent and card."""

import datetime
import json
import os
import re
import time
import unittest

from selenium.webdriver.common.by import By

from harness import (BrowserTestCase, Agent, Server, chromium, free_port, http, requests_sent, screenshot,
                     serious_accessibility_violations, temporary_folder, visible, wait_until)

PASSCODE = "97531864"       # 8 digits: no chance of appearing by accident in hex or base64 in the store
OTHER_PASSCODE = "86420975"
USER = "555254600150"
ROLES = ["S0080:G0450:R5080@RBQ", "S8000:G8000:R8000@X26"]

TIMINGS = {}


class JourneyTests(BrowserTestCase):
    timings = TIMINGS
    label = "Browser timings"

    @classmethod
    def setUpClass(cls):
        cls.folder = temporary_folder("journey")
        cls.bridge_port = free_port()
        cls.server = Server(cls.folder, cls.bridge_port)
        cls.server.add_user(USER, "Asha", "Patel", ROLES)
        cls.card = os.path.join(cls.folder, "asha.json")
        cls.server.issue_card(USER, cls.card, PASSCODE, expires_in_days=30)
        cls.server.add_user("555254600151", "Ben", "Okafor", [ROLES[0]])
        cls.fresh_card = os.path.join(cls.folder, "ben.json")
        cls.server.issue_card("555254600151", cls.fresh_card, OTHER_PASSCODE)
        cls.agent = cls.make_agent()
        cls.driver = chromium()
        cls.violations = {}

    @classmethod
    def make_agent(cls):
        return Agent(cls.folder, cls.server, cls.bridge_port)

    @classmethod
    def tearDownClass(cls):
        BrowserTestCase.tearDownClass.__func__(cls)
        if cls.timings:
            print(f"\n{cls.label}: " + ", ".join(f"{k} {v:.3f} s" for k, v in cls.timings.items()))


    def sign_in_in_page(self, passcode, role_number=None):
        """The sign-in page when the agent holds no session: passcode in the page, then the role."""
        field = visible(self.driver, "passcode")
        self.check_accessibility("sign-in passcode")
        field.send_keys(passcode)
        self.driver.find_element(By.CSS_SELECTOR, "#signin-passcode button").click()
        if role_number is not None:
            visible(self.driver, "signin-role")
            self.check_accessibility("sign-in role choice")
            screenshot(self.driver, "03-choose-role-in-page")
            self.driver.find_element(By.ID, f"role-{role_number}").click()
            self.driver.find_element(By.CSS_SELECTOR, "#signin-role button").click()

    def test_1_whole_journey(self):
        driver, agent, server = self.driver, self.agent, self.server
        agent.empty_reader()
        old_expiry = server.sqlite(
            f"SELECT max(not_after) FROM certificates WHERE user_id = '{USER}' AND status = 'good'")

        # Card in, passcode at the agent, the second of two roles, the notification answered Yes.
        agent.insert(self.card)
        agent.wait_for("Passcode:")
        agent.type(PASSCODE)
        agent.wait_for("Role number [1-2]:")
        agent.type("2")
        agent.wait_for(f"in role {ROLES[1]}.")
        agent.wait_for("Renew them now? [Yes/No]")
        agent.type("Yes")
        url = wait_until(lambda: agent.opened_urls(), what="$BROWSER to be called")[0]
        # The page gets a single-use hand-over secret in the fragment: only it can join the agent's session.
        self.assertRegex(url, "^" + re.escape(f"{server.url}/?operation=selfRenewSmartcard") + "#handover=[0-9a-f]{64}$")

        # The test's $BROWSER hands the URL to the WebDriver session: the page joins the agent's session.
        driver.get(url)
        visible(driver, "continue")
        self.assertIn(ROLES[1], driver.find_element(By.TAG_NAME, "header").text)
        self.assertTrue(driver.find_element(By.ID, "operation-renew").is_selected())
        self.assertEqual("Renew certificate", driver.find_element(By.CSS_SELECTOR, "label[for=operation-renew]").text)
        screenshot(driver, "04-renewal-page")
        self.check_accessibility("renewal page")

        cookie = driver.get_cookie("carddesk_session")
        self.assertTrue(cookie["httpOnly"])
        self.assertEqual("Strict", cookie["sameSite"])

        driver.find_element(By.ID, "continue").click()
        field = visible(driver, "renew-passcode-input")
        screenshot(driver, "05-confirm-passcode")

        # A wrong passcode in the page: the card says how many tries are left.
        field.send_keys("11111111")
        driver.find_element(By.ID, "renew-confirm").click()
        wait_until(lambda: driver.find_element(By.ID, "renew-error").text, what="the wrong-passcode message")
        self.assertEqual("The passcode you entered is not valid. You have 2 remaining tries",
                         driver.find_element(By.ID, "renew-error").text)
        screenshot(driver, "06-wrong-passcode")

        # The right one: progress, then the exact success message.
        field.send_keys(PASSCODE)
        started = time.monotonic()
        driver.find_element(By.ID, "renew-confirm").click()
        visible(driver, "renew-progress", seconds=10)
        screenshot(driver, "07-renewal-in-progress")
        success = visible(driver, "renew-success", seconds=30)
        self.timings["passcode submitted -> success message"] = time.monotonic() - started
        self.assertEqual("Success: certificate renewed for smartcard", success.text)
        stages = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#renew-steps .stage")]
        self.assertEqual(["Done", "Done"], stages)
        self.assertEqual("8", driver.find_element(By.ID, "renew-overall").get_attribute("value"))
        screenshot(driver, "08-success")
        self.check_accessibility("renewal success")
        self.timings["renewal as the page measured it"] = int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-renewal-milliseconds")) / 1000

        # Card out: the page says so by itself.
        agent.remove()
        removed = time.monotonic()
        heading = wait_until(lambda: "You have been logged out" in driver.find_element(By.TAG_NAME, "h1").text,
                             seconds=10, what="the logged-out page")
        self.timings["card removed -> 'You have been logged out'"] = time.monotonic() - removed
        self.assertTrue(heading)
        self.assertLess(self.timings["card removed -> 'You have been logged out'"], 2.0)
        self.assertEqual("Your smartcard was removed from the reader.", driver.find_element(By.ID, "logout-reason").text)
        screenshot(driver, "09-logged-out")
        self.check_accessibility("logged out")

        # Card in again; sign in from the page this time, with the new certificate; home shows the new expiry.
        inserted = time.monotonic()
        agent.insert(self.card)
        driver.find_element(By.LINK_TEXT, "Sign in again").click()
        self.sign_in_in_page(PASSCODE, role_number=2)
        visible(driver, "certificates")
        self.timings["card inserted -> home page (passcode and role typed in the page)"] = time.monotonic() - inserted
        new_expiry = server.sqlite(
            f"SELECT max(not_after) FROM certificates WHERE user_id = '{USER}' AND status = 'good'")
        self.assertGreater(int(new_expiry), int(old_expiry))
        expected = datetime.datetime.fromtimestamp(int(new_expiry) / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
        shown = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#certificates .expiry")]
        self.assertEqual([expected, expected], shown)
        self.assertIn(ROLES[1], driver.find_element(By.ID, "role").text)
        self.assertEqual("2", server.sqlite(
            f"SELECT count(*) FROM certificates WHERE user_id = '{USER}' AND status = 'good'"))
        screenshot(driver, "10-home-with-new-certificates")
        self.check_accessibility("home")

        # The passcode went to the agent on 127.0.0.1 only: never in a request to the server, its log or its store.
        sent = requests_sent(driver)
        to_bridge = [body for url, body in sent if url.startswith(f"http://127.0.0.1:{self.bridge_port}/")]
        to_server = [(url, body) for url, body in sent if url.startswith(server.url)]
        self.assertTrue(any(PASSCODE in body for body in to_bridge), "the scan must see the passcode where it does go")
        self.assertEqual([], [(u, b) for u, b in to_server if PASSCODE in b or PASSCODE in u])
        with open(server.log_path) as f:
            self.assertNotIn(PASSCODE, f.read())
        for name in os.listdir(server.data):
            path = os.path.join(server.data, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(PASSCODE.encode(), f.read(), name)

        agent.remove()
        wait_until(lambda: "You have been logged out" in driver.find_element(By.TAG_NAME, "h1").text, what="logout")

    def test_2_security_of_bridge_and_pages(self):
        driver, agent, server = self.driver, self.agent, self.server
        bridge = f"http://127.0.0.1:{self.bridge_port}"
        # Another origin, or another Host (DNS rebinding), is refused by the bridge.
        status, body = http("GET", bridge + "/v1/status", {"Origin": "http://evil.example"})
        self.assertEqual(403, status)
        self.assertIn("answers only pages from " + server.url, json.loads(body)["error"]["message"])
        status, _ = http("GET", bridge + "/v1/status", {"Origin": server.url, "Host": f"evil.example:{self.bridge_port}"})
        self.assertEqual(403, status)
        status, _ = http("GET", bridge + "/v1/status", {"Origin": server.url})
        self.assertEqual(200, status)
        # A renewal request without the page's bridge token is refused.
        status, _ = http("POST", bridge + "/v1/renewal", {"Origin": server.url, "Content-Type": "application/json"},
                         b'{"passcode":"00000000"}')
        self.assertEqual(401, status)

        # Sign in through the page, then a state-changing request without the CSRF token is refused.
        agent.empty_reader()
        agent.insert(self.fresh_card)
        driver.get(server.url + "/")
        self.sign_in_in_page(OTHER_PASSCODE)
        visible(driver, "certificates")
        # Issue 9, item 5: another program on this computer that sends the server's Origin gets no hand-over code
        # without the secret the agent gave the page, or the passcode; a made-up secret does not do.
        for attempt in (b'{}', b'{"secret":"' + b"0" * 64 + b'"}'):
            status, body = http("POST", bridge + "/v1/handover", {"Origin": server.url, "Content-Type": "application/json"}, attempt)
            self.assertEqual(401, status, body)
            self.assertIn("Enter your smartcard passcode", json.loads(body)["error"]["message"])
        cookie = driver.get_cookie("carddesk_session")["value"]
        status, body = http("POST", server.url + "/logout", {"Cookie": f"carddesk_session={cookie}"})
        self.assertEqual(403, status)
        self.assertIn("CSRF", body)
        status, body = http("GET", server.url + "/session/status", {"Cookie": f"carddesk_session={cookie}"})
        self.assertIn('"active":true', body)
        # The hand-over endpoint without the login token is refused too.
        status, _ = http("POST", server.url + "/login/handover", {"Content-Type": "application/json"}, b'{"code":"x.y"}')
        self.assertEqual(403, status)

        # Outside the window: no renewal offered, and the page says when it opens.
        driver.get(server.url + "/?operation=selfRenewSmartcard")
        opens = visible(driver, "opens-on")
        self.assertEqual([], driver.find_elements(By.ID, "operation-renew"))
        expiry = server.sqlite("SELECT min(not_after) FROM certificates WHERE user_id = '555254600151' AND status = 'good'")
        opening = datetime.datetime.fromtimestamp(int(expiry) / 1000, datetime.timezone.utc) - datetime.timedelta(days=90)
        self.assertEqual(opening.strftime("%Y-%m-%d"), opens.text)
        screenshot(driver, "11-renewal-not-open-yet")
        self.check_accessibility("renewal not open")

        # The logout button (with its token) works.
        driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
        wait_until(lambda: "You have been logged out" in driver.find_element(By.TAG_NAME, "h1").text, what="logout page")
        self.assertEqual("You logged out.", driver.find_element(By.ID, "logout-reason").text)
        agent.wait_for("You have been logged out (logged out)")
        agent.remove()

    def test_4_locked_card_is_sent_to_unlock_first(self):
        driver, agent, server = self.driver, self.agent, self.server
        server.add_user("555254600152", "Cara", "Lind", [ROLES[0]])
        card = os.path.join(self.folder, "cara.json")
        server.issue_card("555254600152", card, OTHER_PASSCODE, expires_in_days=30)
        agent.empty_reader()
        agent.insert(card)
        driver.get(server.url + "/?operation=selfRenewSmartcard")
        for tries_left in (2, 1):
            visible(driver, "passcode").send_keys("00000000")
            driver.find_element(By.CSS_SELECTOR, "#signin-passcode button").click()
            wait_until(lambda: driver.find_element(By.ID, "signin-error").text, what="the wrong-passcode message")
            self.assertEqual(f"The passcode you entered is not valid. You have {tries_left} remaining tries",
                             driver.find_element(By.ID, "signin-error").text)
        visible(driver, "passcode").send_keys("00000000")
        driver.find_element(By.CSS_SELECTOR, "#signin-passcode button").click()
        problem = visible(driver, "problem-card-locked")
        self.assertIn("Your smartcard is locked", problem.text)
        self.assertIn("Unlock it first", problem.text)
        screenshot(driver, "12-card-locked")
        self.check_accessibility("card locked")
        agent.remove()

    def test_3_help_page_shows_configured_contacts(self):
        self.driver.get(self.server.url + "/help")
        self.assertEqual("IT support 0300 123 4567", visible(self.driver, "contact-it").text)
        self.assertEqual("Registration Authority, Room 4, 0300 765 4321", self.driver.find_element(By.ID, "contact-ra").text)
        self.check_accessibility("help")


@unittest.skipIf(os.environ.get("CARDDESK_SKIP_PCSC") == "1", "CARDDESK_SKIP_PCSC=1: no pcscd with vpcd on this machine")
class PCSCJourneyTests(BrowserTestCase):
    """The whole journey once more, with the agent on PC/SC and the card in vsmartcard's vpcd reader through pcscd."""

    timings = {}
    label = "Browser timings, agent on PC/SC"
    setUpClass = classmethod(JourneyTests.setUpClass.__func__)
    tearDownClass = classmethod(JourneyTests.tearDownClass.__func__)
    sign_in_in_page = JourneyTests.sign_in_in_page

    @classmethod
    def make_agent(cls):
        return Agent(cls.folder, cls.server, cls.bridge_port, pcsc=True)

    def test_whole_journey_with_the_agent_on_pcsc(self):
        JourneyTests.test_1_whole_journey(self)


class CompatibilityTests(unittest.TestCase):
    """The compatibility check: each problem gets its own explanation, never a blank page."""

    @classmethod
    def setUpClass(cls):
        cls.folder = temporary_folder("compat")
        cls.bridge_port = free_port()
        cls.server = Server(cls.folder, cls.bridge_port)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_1_agent_not_running(self):
        driver = chromium()
        try:
            driver.get(self.server.url + "/?operation=selfRenewSmartcard")
            problem = visible(driver, "problem-agent-missing")
            self.assertIn("The CardDesk agent is not running on this computer", problem.text)
            self.assertIn("carddesk agent", problem.text)
            screenshot(driver, "01-agent-not-running")
            violations = serious_accessibility_violations(driver)
            self.assertEqual([], [v["id"] for v in violations])
        finally:
            driver.quit()

    def test_2_javascript_off(self):
        driver = chromium(javascript=False)
        try:
            driver.get(self.server.url + "/")
            problem = visible(driver, "problem-javascript")
            self.assertIn("JavaScript is turned off", problem.text)
            self.assertIn("turn JavaScript on for this site", problem.text)
            screenshot(driver, "02-javascript-off")
            # axe cannot run here (it is JavaScript); the same page with JavaScript on is checked above.
        finally:
            driver.quit()

    def test_3_agent_running_but_blocked_by_the_browser(self):
        # Chromium's Local Network Access: a public page may not reach 127.0.0.1 without the user's permission.
        # The override makes our server count as public, as a real deployment is; headless Chromium denies.
        agent = Agent(self.folder, self.server, self.bridge_port)
        driver = chromium(extra_arguments=(f"--ip-address-space-overrides=127.0.0.1:{self.server.port}=public",))
        try:
            driver.get(self.server.url + "/")
            problem = visible(driver, "problem-agent-blocked")
            self.assertIn("The CardDesk agent is running, but this browser is not allowed to reach it", problem.text)
            self.assertIn("Local network access", problem.text)
            blocked = [e["message"] for e in driver.get_log("browser") if "loopback" in e["message"]]
            self.assertTrue(blocked, "Chromium itself reported the blocked loopback request")
            screenshot(driver, "01b-agent-blocked")
            self.assertEqual([], [v["id"] for v in serious_accessibility_violations(driver)])
        finally:
            driver.quit()
            agent.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
