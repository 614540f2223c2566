"""Issue 13: the Registration Authority console in the browser. An RA Agent signs in at /ra with their own card
(passcode and role chosen in the page, through the real agent), finds a card holder and opens their record; a
person of another organisation is refused with a reason. Real server, agent, virtual cards and headless Chromium,
with axe-core."""

import os
import subprocess
import unittest

from selenium.webdriver.common.by import By

from harness import (BrowserTestCase, Agent, Server, chromium, free_port, http, screenshot, temporary_folder,
                     visible, wait_until)

PASSCODE = "24681357"
RA_AGENT = "555254600950"
HOLDER = "555254600951"


class RAConsoleTests(BrowserTestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = temporary_folder("ra-console")
        cls.bridge_port = free_port()
        cls.server = Server(cls.folder, cls.bridge_port)
        cls.agent = Agent(cls.folder, cls.server, cls.bridge_port)
        cls.driver = chromium()
        cls.server.add_user(RA_AGENT, "Rae", "Manager", ["R8000@RBQ", "RAMANAGER@RBQ"])
        cls.server.add_user(HOLDER, "Harriet", "Holder", ["R8000@RBQ"])
        cls.ra_card = os.path.join(cls.folder, "ra.json")
        cls.server.issue_card(RA_AGENT, cls.ra_card, PASSCODE)
        cls.server.issue_card(HOLDER, os.path.join(cls.folder, "holder.json"), PASSCODE, expires_in_days=20)



    def test_ra_signs_in_finds_and_views_a_person(self):
        driver, agent = self.driver, self.agent
        agent.empty_reader()
        agent.insert(self.ra_card)
        agent.wait_for("Passcode:")

        # /ra without a session: the sign-in page; passcode and the RA role chosen in the page.
        driver.get(self.server.url + "/ra")
        self.assertIn("Sign in to the RA console", driver.find_element(By.TAG_NAME, "h1").text)
        field = visible(driver, "passcode")
        field.send_keys(PASSCODE)
        driver.find_element(By.CSS_SELECTOR, "#signin-passcode button").click()
        visible(driver, "signin-role")
        labels = [label.text for label in driver.find_elements(By.CSS_SELECTOR, "#roles label")]
        self.assertEqual(["R8000@RBQ", "RAMANAGER@RBQ"], labels)
        driver.find_element(By.ID, "role-2").click()
        driver.find_element(By.CSS_SELECTOR, "#signin-role button").click()

        # The console, working as RA Manager for RBQ.
        desk = visible(driver, "ra-desk", seconds=20)
        self.assertEqual("Working as RA Manager for RBQ.", desk.text)
        visible(driver, "compat")
        screenshot(driver, "ra-01-console")
        self.check_accessibility("RA console")

        query = driver.find_element(By.ID, "ra-query")
        query.send_keys("Holder")
        driver.find_element(By.CSS_SELECTOR, "#ra-search button").click()
        link = visible(driver, "ra-results").find_element(By.LINK_TEXT, "Holder, Harriet")
        screenshot(driver, "ra-02-search")
        self.check_accessibility("RA search results")
        link.click()

        wait_until(lambda: driver.find_element(By.TAG_NAME, "h1").text == "Harriet Holder", what="the person's page")
        self.assertEqual(HOLDER, driver.find_element(By.ID, "ra-person-id").text)
        statuses = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#ra-person-certificates .status")]
        self.assertEqual(["valid", "valid"], statuses)
        actions = driver.find_element(By.ID, "ra-person-actions").text
        self.assertIn("renew expired certificates Yes", actions)
        self.assertIn("cancel a card permanently Yes", actions)
        screenshot(driver, "ra-03-person")
        self.check_accessibility("RA person page")

        # The expiry report: a chart drawn by the server, the same figures as a table, the list as CSV.
        driver.get(self.server.url + "/ra")
        visible(driver, "ra-expiry-link").click()
        summary = visible(driver, "expiry-summary").text
        # The holder's card expires in 20 days (two certificates); the RA's own, issued for three years, not yet.
        self.assertIn("2 certificates of RBQ fall due in the next 26 weeks", summary)
        self.assertEqual(26, len(driver.find_elements(By.CSS_SELECTOR, "#expiry-chart rect.bar")))
        self.assertEqual(26, len(driver.find_elements(By.CSS_SELECTOR, "#expiry-weeks tbody tr")))
        screenshot(driver, "ra-04-expiry-report")
        self.check_accessibility("RA expiry report")
        session = driver.get_cookie("carddesk_session")["value"]
        status, body = http("GET", self.server.url + "/ra/reports/expiry.csv", headers={"Cookie": f"carddesk_session={session}"})
        self.assertEqual(200, status)
        rows = body.strip().split("\r\n")
        self.assertEqual("user_id,given_name,family_name,certificate,serial,card,expires", rows[0])
        self.assertEqual(2, len(rows) - 1)
        self.assertEqual({HOLDER}, {row.split(",")[0] for row in rows[1:]})

        # An audit search: what happened to the holder (their card issued, and this RA viewing their record).
        driver.get(self.server.url + "/ra")
        visible(driver, "ra-audit-link").click()
        self.assertIn("The audit chain verifies", visible(driver, "audit-chain").text)
        driver.find_element(By.ID, "audit-person").send_keys(HOLDER)
        driver.find_element(By.CSS_SELECTOR, "#audit-search button").click()
        results = visible(driver, "audit-results").text
        self.assertIn("ra.view", results)
        self.assertIn(f"user:{RA_AGENT}", results)
        self.assertIn("card issue", results)
        screenshot(driver, "ra-05-audit-search")
        self.check_accessibility("RA audit search")
        status, body = http("GET", self.server.url + f"/ra/audit.csv?person={HOLDER}", headers={"Cookie": f"carddesk_session={session}"})
        self.assertEqual(200, status)
        self.assertTrue(body.startswith("sequence,time,action,actor,subject,outcome,details\r\n"))
        self.assertIn("ra.view", body)

        # Cancel the holder's card permanently: the reason, the confirmation, then its certificates are revoked.
        driver.get(self.server.url + f"/ra/people/{HOLDER}")
        form = visible(driver, "ra-person-cards").find_element(By.XPATH, "following::form[contains(@class, 'cancel-card')]")
        self.check_accessibility("RA person page with the cancel form")
        form.find_element(By.CSS_SELECTOR, "select").send_keys("Lost or stolen")
        form.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
        form.find_element(By.CSS_SELECTOR, "button").click()
        self.assertEqual("The card is cancelled permanently; 2 certificates were revoked.", visible(driver, "ra-done").text)
        statuses = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#ra-person-certificates .status")]
        self.assertEqual(["revoked", "revoked"], statuses)
        self.assertEqual("cancelled", driver.find_element(By.CSS_SELECTOR, "#ra-person-cards .status").text)
        # OCSP says revoked at once, asked by openssl about the authentication certificate's serial.
        serial = driver.find_element(By.CSS_SELECTOR, "#ra-person-certificates tr[data-profile='authentication'] .serial").text
        files = {}
        for name in ("authentication-ca.pem", "root.pem"):
            status, pem = http("GET", self.server.url + "/pki/" + name)
            self.assertEqual(200, status)
            files[name] = os.path.join(self.folder, name)
            with open(files[name], "w") as f:
                f.write(pem)
        answer = subprocess.run(["openssl", "ocsp", "-issuer", files["authentication-ca.pem"], "-serial", "0x" + serial,
                                 "-url", self.server.url + "/ocsp", "-CAfile", files["root.pem"], "-no_nonce"],
                                capture_output=True, text=True, timeout=30)
        self.assertIn(f"0x{serial}: revoked", answer.stdout, answer.stdout + answer.stderr)
        self.assertIn("Response verify OK", answer.stderr + answer.stdout)
        self.assertEqual([], driver.find_elements(By.CSS_SELECTOR, "form.cancel-card"))
        screenshot(driver, "ra-06-card-cancelled")
        self.check_accessibility("RA person page after cancelling")

        # Their own record: every action refused with the reason.
        driver.get(self.server.url + f"/ra/people/{RA_AGENT}")
        own = visible(driver, "ra-person-actions").text
        self.assertIn("No: Nobody performs an RA action on their own card", own)

        # Card out: the console page says the session ended, by itself.
        agent.remove()
        wait_until(lambda: "/logged-out" in driver.current_url, seconds=15, what="the logged-out page")
        # The cancelled card signs in nowhere: its holder's passcode is right, the server refuses the card.
        agent.insert(os.path.join(self.folder, "holder.json"))
        agent.wait_for("Passcode:", count=2)
        agent.type(PASSCODE)
        agent.wait_for("has been cancelled")


if __name__ == "__main__":
    unittest.main()
