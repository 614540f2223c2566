"""Issue 9 attacks that need the real binaries but no browser."""

import os
import pty
import select
import socket
import subprocess
import threading
import unittest

from harness import CLIENT, SERVER, Server, free_port, run, temporary_folder, wait_until

PASSCODE = "24681357"


class BridgeStartTests(unittest.TestCase):
    def test_agent_refuses_a_port_someone_else_holds(self):
        """The bridge assumes one user per workstation: where another program (another user's agent) already listens
        on the port, the agent does not start, and says why."""
        folder = temporary_folder("port-held")
        reader = os.path.join(folder, "reader")
        os.makedirs(reader, mode=0o700)
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        try:
            result = subprocess.run(
                [CLIENT, "agent", "--reader", reader, "--server", f"http://127.0.0.1:{free_port()}", "--bridge-port", str(port)],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            )
        finally:
            holder.close()
        self.assertNotEqual(0, result.returncode)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}", result.stdout + result.stderr)
        self.assertIn("another user's", result.stdout + result.stderr)


class PasscodeExposureTests(unittest.TestCase):
    """Issue 9, item 8: a passcode is never on the screen nor in a process's arguments."""

    def test_agent_does_not_echo_the_passcode_typed_at_its_terminal(self):
        folder = temporary_folder("agent-echo")
        bridge_port = free_port()
        server = Server(folder, bridge_port)
        reader = os.path.join(folder, "reader")
        os.makedirs(reader, mode=0o700)
        card = os.path.join(folder, "card.json")
        server.add_user("555254600191", "Eve", "Tester", ["R8000@RBQ"])
        server.issue_card("555254600191", card, PASSCODE)
        controller, terminal = pty.openpty()
        agent = subprocess.Popen([CLIENT, "agent", "--reader", reader, "--server", server.url, "--bridge-port", str(bridge_port)],
                                 stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
        os.close(terminal)
        screen = bytearray()

        def read_screen():
            while True:
                ready, _, _ = select.select([controller], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(controller, 4096)
                    except OSError:
                        return
                    if not chunk:
                        return
                    screen.extend(chunk)
                elif agent.poll() is not None:
                    return

        reader_thread = threading.Thread(target=read_screen, daemon=True)
        reader_thread.start()
        try:
            wait_until(lambda: b"Insert your smartcard" in screen, seconds=30, what="the agent to start")
            run([CLIENT, "card", "insert", card, "--reader", reader])
            wait_until(lambda: b"Passcode:" in screen, seconds=30, what="the agent to ask for the passcode")
            os.write(controller, (PASSCODE + "\n").encode())
            wait_until(lambda: b"Signed in as Eve Tester" in screen, seconds=30,
                       what=f"the agent to sign in with the typed passcode; the screen showed {bytes(screen)!r}")
            self.assertNotIn(PASSCODE.encode(), bytes(screen), "the passcode was shown on the terminal")
            # Echo is back once the passcode is in: what is typed next (an answer, a role) shows as usual.
            os.write(controller, b"visible-again\n")
            wait_until(lambda: b"visible-again" in screen, seconds=10, what="echo back after the passcode")
        finally:
            agent.kill()
            agent.wait()
            reader_thread.join(timeout=5)
            os.close(controller)
            server.stop()

    def test_card_issue_takes_no_passcode_in_its_arguments(self):
        folder = temporary_folder("passcode-argv")
        data = os.path.join(folder, "data")
        run([SERVER, "user", "add", "--id", "555254600192", "--given", "Ida", "--family", "Tester", "--org", "RBQ",
             "--role", "R8000@RBQ", "--data", data])
        card = os.path.join(folder, "ida.json")
        refused = subprocess.run([SERVER, "card", "issue", "--user", "555254600192", "--virtual", card, "--passcode", PASSCODE,
                                  "--key-algorithm", "p256", "--data", data], capture_output=True, text=True, timeout=60)
        self.assertEqual(64, refused.returncode, refused.stderr)
        self.assertIn("can be read by every user of this computer", refused.stderr)
        self.assertFalse(os.path.exists(card))
        passcode_file = os.path.join(folder, "passcode")
        with open(passcode_file, "w") as f:
            f.write(PASSCODE + "\n")
        run([SERVER, "card", "issue", "--user", "555254600192", "--virtual", card, "--passcode-file", passcode_file,
             "--key-algorithm", "p256", "--data", data])
        # The card took the passcode from the file: changing it with that passcode works, a wrong one does not.
        wrong = subprocess.run([CLIENT, "passcode", "change", "--card", card], input="11223344\n", capture_output=True, text=True, timeout=60)
        self.assertEqual(80, wrong.returncode, wrong.stdout + wrong.stderr)
        changed = subprocess.run([CLIENT, "passcode", "change", "--card", card], input=f"{PASSCODE}\n97531864\n97531864\n",
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(0, changed.returncode, changed.stdout + changed.stderr)


if __name__ == "__main__":
    unittest.main()
