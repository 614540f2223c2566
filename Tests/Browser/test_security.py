"""Issue 9 attacks that need the real binaries but no browser."""

import os
import socket
import subprocess
import unittest

from harness import CLIENT, free_port, temporary_folder


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


if __name__ == "__main__":
    unittest.main()
