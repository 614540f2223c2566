"""Issue 13: the RA desk with the card holder's card in the agent's second reader, in the browser. An RA Agent signs in
at /ra with their own card; renews a card whose certificates have expired (the holder types their passcode in the
page); unlocks another person's locked card (the holder chooses a new passcode), renews it with that passcode, then
clears it; issues a blank card to someone who has none, who then signs in with it.
Real server (running two days ahead with libfaketime, so that certificates issued for one day have expired), real
agent with two reader folders, virtual cards, headless Chromium and axe-core."""

import os
import subprocess
import unittest

from selenium.webdriver.common.by import By

from harness import (BrowserTestCase, CLIENT, Agent, Server, chromium, free_port, screenshot, temporary_folder,
                     visible, visible_text, wait_until)

PASSCODE = "24681357"
NEW_PASSCODE = "51739264"
RA_AGENT = "555254600970"
EXPIRED_HOLDER = "555254600971"
LOCKED_HOLDER = "555254600972"
NEWCOMER = "555254600973"


class RADeskTests(BrowserTestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = temporary_folder("ra-desk")
        cls.bridge_port = free_port()
        # Cards issued today; the server then runs two days ahead, where the one-day certificates have expired.
        today = Server(cls.folder, cls.bridge_port)
        today.add_user(RA_AGENT, "Ada", "Agent", ["RAAGENT@RBQ"])
        today.add_user(EXPIRED_HOLDER, "Ella", "Expired", ["R8000@RBQ"])
        today.add_user(LOCKED_HOLDER, "Lou", "Locked", ["R8000@RBQ"])
        today.add_user(NEWCOMER, "Nia", "Newcomer", ["R8000@RBQ"])
        cls.ra_card = os.path.join(cls.folder, "ra.json")
        cls.expired_card = os.path.join(cls.folder, "expired.json")
        cls.locked_card = os.path.join(cls.folder, "locked.json")
        today.issue_card(RA_AGENT, cls.ra_card, PASSCODE)
        today.issue_card(EXPIRED_HOLDER, cls.expired_card, PASSCODE, expires_in_days=1)
        today.issue_card(LOCKED_HOLDER, cls.locked_card, PASSCODE, expires_in_days=30)
        today.stop()
        cls.server = Server(cls.folder, cls.bridge_port, clock_ahead_days=2)
        # Three wrong passcodes lock Lou's card (the card counts them; no server is asked).
        for _ in range(3):
            subprocess.run([CLIENT, "renew", "--card", cls.locked_card, "--server", cls.server.url], input="00000000\n",
                           capture_output=True, text=True, timeout=60)
        status = subprocess.run([CLIENT, "status", "--card", cls.locked_card, "--server", cls.server.url],
                                capture_output=True, text=True, timeout=60)
        assert "Passcode: locked" in status.stdout, status.stdout + status.stderr
        # A factory-fresh card for Nia, from the virtual-card manufacturer the server trusts.
        cls.blank_card = os.path.join(cls.folder, "blank.json")
        subprocess.run([CLIENT, "card", "blank", cls.blank_card, "--manufacturer", os.path.join(cls.server.data, "virtual-card-manufacturer")],
                       check=True, capture_output=True, timeout=60)
        cls.agent = Agent(cls.folder, cls.server, cls.bridge_port, second_reader=True)
        cls.driver = chromium()



    def statuses(self):
        return [cell.text for cell in self.driver.find_elements(By.CSS_SELECTOR, "#ra-person-certificates .status")]

    def test_renew_an_expired_card_unlock_another_persons_card_and_issue_a_new_card_in_the_second_reader(self):
        driver, agent = self.driver, self.agent
        agent.insert(self.ra_card)
        agent.wait_for("Passcode:")
        driver.get(self.server.url + "/ra")
        visible(driver, "passcode").send_keys(PASSCODE)
        driver.find_element(By.CSS_SELECTOR, "#signin-passcode button").click()
        self.assertEqual("Working as RA Agent for RBQ.", visible(driver, "ra-desk", seconds=20).text)

        # Ella's certificates have expired. Her card is not in the second reader yet: the page says where to put it.
        driver.get(self.server.url + f"/ra/people/{EXPIRED_HOLDER}")
        self.assertEqual(["expired", "expired"], self.statuses())
        visible_text(driver, "desk-status", "Put the card holder's smartcard")
        self.assertFalse(driver.find_element(By.ID, "desk-renew").is_displayed())
        # Someone else's card in the second reader is not this person's: nothing is offered.
        agent.insert_second(self.locked_card)
        visible_text(driver, "desk-status", "is not one of this person's cards in use")
        self.assertFalse(driver.find_element(By.ID, "desk-renew").is_displayed())
        agent.remove_second()

        agent.insert_second(self.expired_card)
        visible_text(driver, "desk-status", "(3 passcode tries left)")
        field = visible(driver, "desk-renew-passcode")
        driver.execute_script("document.getElementById('desk').scrollIntoView()")
        screenshot(driver, "ra-07-desk-card-in-second-reader")
        self.check_accessibility("RA desk: the holder's card in the second reader")
        # A wrong passcode: the card says so and nothing starts.
        field.send_keys("11112222")
        driver.find_element(By.CSS_SELECTOR, "#desk-renew button").click()
        visible_text(driver, "desk-renew-error", "not valid")
        visible_text(driver, "desk-status", "(2 passcode tries left)")
        driver.find_element(By.ID, "desk-renew-passcode").send_keys(PASSCODE)
        driver.find_element(By.CSS_SELECTOR, "#desk-renew button").click()
        self.assertEqual("The certificates on the card are renewed.", visible(driver, "ra-done", seconds=60).text)
        # Newest first: the two new certificates valid, the expired ones revoked (superseded).
        self.assertEqual(["valid", "valid", "revoked", "revoked"], self.statuses())
        screenshot(driver, "ra-08-desk-expired-card-renewed")
        self.check_accessibility("RA desk: renewed")
        agent.wait_for(f"Success: certificates renewed for smartcard")
        agent.remove_second()

        # Lou's card is locked: the page offers the unlock only; Lou chooses a new passcode.
        driver.get(self.server.url + f"/ra/people/{LOCKED_HOLDER}")
        agent.insert_second(self.locked_card)
        visible_text(driver, "desk-status", "It is locked: unlock it first")
        self.assertFalse(driver.find_element(By.ID, "desk-renew").is_displayed())
        visible(driver, "desk-unlock-new").send_keys("111111")
        driver.find_element(By.ID, "desk-unlock-again").send_keys("111111")
        driver.find_element(By.CSS_SELECTOR, "#desk-unlock button").click()
        visible_text(driver, "desk-unlock-error", "cannot be one digit repeated")
        driver.execute_script("document.getElementById('desk').scrollIntoView()")
        screenshot(driver, "ra-09-desk-unlock")
        self.check_accessibility("RA desk: unlock")
        driver.find_element(By.ID, "desk-unlock-new").send_keys(NEW_PASSCODE)
        driver.find_element(By.ID, "desk-unlock-again").send_keys(NEW_PASSCODE)
        driver.find_element(By.CSS_SELECTOR, "#desk-unlock button").click()
        self.assertEqual("The card is unlocked: its holder's new passcode works now.", visible(driver, "ra-done", seconds=30).text)
        visible_text(driver, "desk-status", "(3 passcode tries left)")
        # Lou's certificates fall due (28 days left): renewed at once with the new passcode.
        visible(driver, "desk-renew-passcode").send_keys(NEW_PASSCODE)
        driver.find_element(By.CSS_SELECTOR, "#desk-renew button").click()
        visible_text(driver, "ra-done", "The certificates on the card are renewed.", seconds=60)
        self.assertEqual(["valid", "valid", "revoked", "revoked"], self.statuses())
        history = driver.find_element(By.ID, "ra-person-history").text
        self.assertIn("passcode reset and PUK rotated at the RA desk by RA Agent for RBQ", history)
        self.assertNotIn(NEW_PASSCODE, driver.page_source)
        # Lou leaves: the card is cleared (cancelled, its certificates revoked, wiped), and is blank for the next person.
        visible(driver, "desk-clear-confirm").click()
        driver.find_element(By.CSS_SELECTOR, "#desk-clear button").click()
        visible_text(driver, "ra-done", "The card is cleared: it is blank, ready to be issued again.", seconds=30)
        self.assertEqual(["cancelled"], [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#ra-person-cards .status")])
        self.assertEqual({"revoked"}, set(self.statuses()))
        visible_text(driver, "desk-status", "A blank card is in your second reader")
        agent.wait_for("is cleared: it is blank, ready to be issued again.")
        agent.remove_second()
        wait_until(lambda: "Put the card holder's smartcard" in driver.find_element(By.ID, "desk-status").text,
                   what="the page to see the second reader empty")

        # Nia has no card: a blank card in the second reader is issued to her, with the passcode she types.
        driver.get(self.server.url + f"/ra/people/{NEWCOMER}")
        self.assertEqual("No card has been issued.", driver.find_element(By.XPATH, "//h2[text()='Cards']/following-sibling::p").text)
        agent.insert_second(self.blank_card)
        visible_text(driver, "desk-status", "A blank card is in your second reader")
        visible(driver, "desk-issue-new").send_keys(NEW_PASSCODE)
        driver.find_element(By.ID, "desk-issue-again").send_keys(NEW_PASSCODE)
        driver.execute_script("document.getElementById('desk').scrollIntoView()")
        screenshot(driver, "ra-10-desk-issue")
        self.check_accessibility("RA desk: issue a blank card")
        driver.find_element(By.CSS_SELECTOR, "#desk-issue button").click()
        visible_text(driver, "ra-done", "The new card is issued.", seconds=60)
        self.assertEqual(["active"], [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#ra-person-cards .status")])
        self.assertEqual(["valid", "valid"], self.statuses())
        visible_text(driver, "desk-status", "(3 passcode tries left)")
        agent.wait_for("issued in the second reader.")
        agent.remove_second()
        # The RA takes their card out (the console logs out); Nia signs in with her new card and her passcode.
        agent.remove()
        wait_until(lambda: "/logged-out" in driver.current_url, seconds=15, what="the logged-out page")
        agent.insert(self.blank_card)
        agent.wait_for("Passcode:", count=2)
        agent.type(NEW_PASSCODE)
        agent.wait_for(f"Signed in as Nia Newcomer ({NEWCOMER})")


if __name__ == "__main__":
    unittest.main()
