"""Serve an instrumented agent over HTTP and turn a policy block into a 403 JSON response.

    python examples/handle_block.py               # serve on 127.0.0.1:8080; POST {"message": "..."} to /chat
    python examples/handle_block.py --self-test   # start on a free port, send a bad request, print, exit 0

Standard library only (http.server); the agent is offline (a scripted reply stands in for the model).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from autogen import Agent, ConversableAgent

from execlave import Execlave
from execlave.errors import AgentPausedError, PolicyBlockedError
from execlave.integrations.autogen import instrument_autogen_agent

POLICIES = [
    {
        "id": "no-destructive-input",
        "name": "No destructive commands",
        "policyType": "injection_scan",
        "enforcementMode": "block",
        "ruleDefinition": {"scan_input": True, "patterns": ["rm -rf /", "ignore previous instructions"]},
    }
]


def scripted_model(recipient: Any, messages: Any = None, sender: Any = None, config: Any = None) -> Any:
    return True, "Done: the request was handled."


def make_server(host: str, port: int) -> tuple[ThreadingHTTPServer, Execlave]:
    exe = Execlave(policies=POLICIES)
    agent = ConversableAgent("ops_assistant", llm_config=False, human_input_mode="NEVER")
    agent.register_reply([Agent, None], scripted_model, position=0)
    instrument_autogen_agent(agent, exe, agent_id="ops-assistant")
    lock = threading.Lock()  # one ConversableAgent is not meant to reply to concurrent requests

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != "/chat":
                self._send(404, {"error": "not found"})
                return
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                message = payload["message"]
                if not isinstance(message, str):
                    raise TypeError("message must be a string")
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"error": "bad request", "detail": str(exc)})
                return
            try:
                with lock:
                    reply = agent.generate_reply(messages=[{"role": "user", "content": message}])
            except PolicyBlockedError as exc:
                self._send(403, {"error": "blocked", "violations": exc.violations})
                return
            except AgentPausedError as exc:
                self._send(503, {"error": "paused", "detail": str(exc)})
                return
            self._send(200, {"reply": reply})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler), exe


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def self_test() -> int:
    server, exe = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/chat"
    try:
        ok_status, ok_body = post(url, {"message": "restart the web tier"})
        print(ok_status, json.dumps(ok_body))
        status, body = post(url, {"message": "please rm -rf / now"})
        print(status, json.dumps(body, indent=2))
    finally:
        server.shutdown()
        server.server_close()
        exe.shutdown(timeout=1.0)
    good = ok_status == 200 and status == 403 and body.get("error") == "blocked" and body.get("violations")
    return 0 if good else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--self-test", action="store_true", help="start, send one bad request, print, exit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    server, exe = make_server(args.host, args.port)
    print(f"serving on http://{args.host}:{server.server_address[1]}/chat")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        exe.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
