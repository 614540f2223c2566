"""Issue 12: the browser journey across two server instances behind haproxy on one PostgreSQL, with the instance the
page was using SIGKILLed in the middle. The page, the agent and the card see one service: any instance answers any
request, because every session, challenge and renewal lives in the database."""

import os
import re
import unittest

from selenium.webdriver.common.by import By

from harness import Agent, Cluster, chromium, free_port, screenshot, temporary_folder, visible, wait_until

PASSCODE = "75319864"
USER = "555254600170"
ROLE = "R8000@RBQ"


class ClusterJourneyTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = temporary_folder("cluster")
        cls.bridge_port = free_port()
        cls.cluster = Cluster(cls.folder, cls.bridge_port)
        cls.cluster.add_user(USER, "Dara", "Quinn", [ROLE])
        cls.card = os.path.join(cls.folder, "dara.json")
        cls.cluster.issue_card(USER, cls.card, PASSCODE, expires_in_days=30)
        cls.agent = Agent(cls.folder, cls.cluster, cls.bridge_port)
        cls.driver = chromium()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.agent.stop()
        cls.cluster.stop()

    def requests_in_log(self, instance, since=0):
        """Requests the instance answered (its health checks from haproxy left out)."""
        return len(re.findall(r'"hb\.request\.path":"(?!/health")', self.cluster.log(instance)[since:]))

    def test_journey_across_instances_with_one_killed(self):
        driver, agent, cluster = self.driver, self.agent, self.cluster
        old = cluster.sql(f"SELECT string_agg(serial, ',' ORDER BY serial) FROM certificates WHERE user_id = '{USER}' AND status = 'good'")
        old_expiry = cluster.sql(f"SELECT max(not_after) FROM certificates WHERE user_id = '{USER}' AND status = 'good'")

        # Card in, passcode at the agent, the notification answered Yes: the page opens at haproxy's address.
        agent.insert(self.card)
        agent.wait_for("Passcode:")
        agent.type(PASSCODE)
        agent.wait_for("Renew them now? [Yes/No]")
        agent.type("Yes")
        url = wait_until(lambda: agent.opened_urls(), what="$BROWSER to be called")[0]
        self.assertTrue(url.startswith(f"{cluster.url}/?operation=selfRenewSmartcard#handover="), url)
        driver.get(url)
        visible(driver, "continue")
        self.assertTrue(driver.find_element(By.ID, "operation-renew").is_selected())
        # Round robin: both instances have served this journey's requests (agent sign-in, hand-over, page).
        self.assertGreater(self.requests_in_log(1), 0)
        self.assertGreater(self.requests_in_log(2), 0)

        # Instance 1 dies (SIGKILL) between the renewal page and the passcode: the session and what follows live on.
        cluster.kill(1)
        driver.find_element(By.ID, "continue").click()
        visible(driver, "renew-passcode-input").send_keys(PASSCODE)
        since_2 = len(cluster.log(2))
        driver.find_element(By.ID, "renew-confirm").click()
        success = visible(driver, "renew-success", seconds=60)
        self.assertEqual("Success: certificate renewed for smartcard", success.text)
        screenshot(driver, "cluster-01-renewed-with-one-instance-killed")
        self.assertIn("/api/v1/renewals", cluster.log(2)[since_2:], "the surviving instance carried the renewal")

        # Card out: logged out. Instance 1 comes back and instance 2 dies: signing in again, with the new
        # certificate, is answered by instance 1 alone, from the state instance 2 wrote.
        agent.remove()
        wait_until(lambda: "You have been logged out" in driver.find_element(By.TAG_NAME, "h1").text,
                   seconds=10, what="the logged-out page")
        since_1 = len(cluster.log(1))
        cluster.restart(1)
        # haproxy takes it back after two good health checks (500 ms apart).
        wait_until(lambda: cluster.log(1)[since_1:].count('"hb.request.path":"/health"') >= 3, seconds=20,
                   what="haproxy's health checks to reach the restarted instance")
        cluster.kill(2)
        agent.insert(self.card)
        driver.find_element(By.LINK_TEXT, "Sign in again").click()
        visible(driver, "passcode").send_keys(PASSCODE)
        driver.find_element(By.CSS_SELECTOR, "#signin-passcode button").click()
        visible(driver, "certificates", seconds=30)
        self.assertGreater(self.requests_in_log(1, since_1), 0, "the restarted instance answered the sign-in")
        screenshot(driver, "cluster-02-signed-in-on-the-other-instance")

        # The store: two new good certificates, the old ones superseded, one per profile; the card holds the new.
        new = cluster.sql(f"SELECT string_agg(serial, ',' ORDER BY serial) FROM certificates WHERE user_id = '{USER}' AND status = 'good'")
        self.assertEqual(2, len(new.split(",")))
        self.assertEqual(set(), set(new.split(",")) & set(old.split(",")))
        self.assertEqual("2", cluster.sql(f"SELECT count(*) FROM certificates WHERE user_id = '{USER}' AND status = 'revoked' AND revocation_reason = 4"))
        self.assertGreater(int(cluster.sql(f"SELECT max(not_after) FROM certificates WHERE user_id = '{USER}' AND status = 'good'")), int(old_expiry))
        verify = cluster.command("audit", "verify")
        self.assertIn("Audit log intact", verify.stdout)
        agent.remove()


if __name__ == "__main__":
    unittest.main()
