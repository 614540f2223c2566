"""Issue 13: expiry reminders by email, through the real server's outbox to a real SMTP server (aiosmtpd): each
reminder is sent exactly once across restarts, and none goes to a card that was renewed."""

import os
import subprocess
import time
import unittest

from aiosmtpd.controller import Controller

from harness import CLIENT, Inbox, Server, free_port, temporary_folder, wait_until

PASSCODE = "24681357"


class ReminderTests(unittest.TestCase):
    def test_each_reminder_once_across_restarts_and_none_to_a_renewed_card(self):
        folder = temporary_folder("reminders")
        inbox = Inbox()
        smtp_port = free_port()
        smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        self.addCleanup(smtp.stop)
        arguments = ("--smtp", f"smtp://127.0.0.1:{smtp_port}", "--smtp-from", "carddesk@nhs.net", "--smtp-insecure")

        server = Server(folder, free_port(), extra_arguments=arguments)
        cards = {}
        for user_id, name, days in [("555254600701", "Ann", 80), ("555254600702", "Ben", 20), ("555254600703", "Cat", 5),
                                    ("555254600704", "Dan", 200), ("555254600705", "Eve", 20)]:
            server.add_user(user_id, name, "Due", ["R8000@RBQ"], email=f"{name.lower()}.due@nhs.net")
            cards[name] = os.path.join(folder, f"{name}.json")
            server.issue_card(user_id, cards[name], PASSCODE, expires_in_days=days)
        # Eve renews her card before any reminder runs.
        renewed = subprocess.run([CLIENT, "renew", "--card", cards["Eve"], "--server", server.url], input=PASSCODE + "\n",
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(0, renewed.returncode, renewed.stderr)
        self.assertIn("Success: certificate renewed for smartcard", renewed.stdout)
        server.stop()

        # A restart: the maintenance pass at start queues the reminders due, the outbox sends them.
        server = Server(folder, free_port(), extra_arguments=arguments)
        wait_until(lambda: len(inbox.messages) >= 3, seconds=30, what="three reminders at the SMTP server")
        time.sleep(2)
        server.stop()
        self.assertEqual(["ann.due@nhs.net", "ben.due@nhs.net", "cat.due@nhs.net"], inbox.recipients())
        bodies = {tos[0]: body for tos, body in inbox.messages}
        self.assertIn("Subject: Your smartcard certificates expire on", bodies["ben.due@nhs.net"])
        self.assertIn("in 20 days", bodies["ben.due@nhs.net"])
        self.assertIn("/?operation=selfRenewSmartcard", bodies["ben.due@nhs.net"])

        # Another restart: nothing is sent twice.
        server = Server(folder, free_port(), extra_arguments=arguments)
        time.sleep(4)
        self.assertEqual(["90 ann", "30 ben", "7 cat"], server.sqlite(
            "SELECT r.days || ' ' || lower(u.given_name) FROM expiry_reminders r JOIN cards c ON c.serial = r.card_serial "
            "JOIN users u ON u.id = c.user_id ORDER BY r.days DESC").split("\n"))
        server.stop()
        self.assertEqual(3, len(inbox.messages))


if __name__ == "__main__":
    unittest.main()
