"""Local stand-ins for Slack, Teams, Microsoft identity and Graph, Trello, Asana and webhook receivers on one HTTP(S)
server, speaking their protocols (status codes, error bodies, 429 + Retry-After), for the demo and the tests."""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

#: The one Trello list the fake knows (the demo's automation adds cards to it).
TRELLO_LIST_ID = "5f1a2b3c4d5e6f7a8b9c0d1e"
BOT_SCOPE = "https://api.botframework.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass
class Recorded:
    service: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    #: The status the fake answered with.
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: Any = None  # a dict/list is sent as JSON, a str as text
    headers: dict[str, str] = field(default_factory=dict)


#: The shape of each provider's rate-limit and outage answers, as their documentation shows them.
RATE_LIMITED: dict[str, Any] = {
    "slack": {"ok": False, "error": "ratelimited"},
    "trello": {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
    "asana": {"errors": [{"message": "You have made too many requests recently. Please, be chill."}]},
    "teams": {"error": {"code": "WorkflowTriggerIsThrottled", "message": "The workflow trigger is throttled."}},
    "bot": {"error": {"code": "Throttled", "message": "Too many requests."}},
    "graph": {"error": {"code": "ApplicationThrottled",
                        "message": "Application is over its MailboxConcurrency limit."}},
    "hooks": "Too Many Requests",
}
UNAVAILABLE: dict[str, Any] = {
    "slack": {"ok": False, "error": "service_unavailable"},
    "trello": "Service Unavailable",
    "asana": {"errors": [{"message": "Server Error", "phrase": "6 sad squid snuggle softly"}]},
    "teams": {"error": {"code": "ServiceUnavailable", "message": "The service is unavailable."}},
    "bot": {"error": {"code": "ServiceError", "message": "Service unavailable."}},
    "graph": {"error": {"code": "ServiceNotAvailable", "message": "The service is temporarily unavailable."}},
    "hooks": "Bad Gateway",
}


class FakeProviders:
    """The accepted credentials and known objects are attributes; `rate_limit`/`outage` queue faults."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", port: int = 0):
        self.slack_token = f"xoxb-fake-{secrets.token_hex(8)}"
        self.slack_channels = {"C0SALES": "sales", "C0OLD": "old-deals", "C0PRIVATE": "board"}
        self.slack_archived = {"C0OLD"}
        self.slack_not_member = {"C0PRIVATE"}
        self.trello_key, self.trello_token = secrets.token_hex(16), secrets.token_hex(32)
        self.trello_lists = {TRELLO_LIST_ID: "Onboarding"}
        self.asana_token = f"2/1200/{secrets.token_hex(16)}"
        self.asana_projects = {"1201000000000001": "Deals"}
        self.teams_signature = secrets.token_urlsafe(24)
        self.app_id, self.app_secret = "00000000-0000-4000-8000-00000000b07a", f"bot~{secrets.token_urlsafe(24)}"
        self.graph_client_id, self.graph_secret = "00000000-0000-4000-8000-0000000006a9", secrets.token_urlsafe(24)
        self.conversations = {"19:sales@thread.tacv2"}
        self.conversations_without_bot = {"19:board@thread.tacv2"}
        self.mailboxes = {"ada@acme.example"}
        self.hook_user, self.hook_password = "crm", secrets.token_urlsafe(12)
        self.requests: list[Recorded] = []
        self.tokens: dict[str, tuple[str, str]] = {}  # access token -> (client id, scope)
        self._faults: dict[str, list[Answer]] = defaultdict(list)
        self._lock = threading.Lock()
        self._tls = tls
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-providers", daemon=True)

    # --- lifecycle and addresses ---------------------------------------------------------------

    def __enter__(self) -> FakeProviders:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host!s}:{port}"

    def url(self, service: str) -> str:
        return {"slack": f"{self.base}/slack/api/", "trello": f"{self.base}/trello/1",
                "asana": f"{self.base}/asana/api/1.0", "bot": f"{self.base}/bot/",
                "graph": f"{self.base}/graph/v1.0", "login": self.base,
                "teams": f"{self.base}/teams/workflows/4f1c/triggers/manual/paths/invoke?api-version=1"
                         f"&sig={self.teams_signature}",
                "hooks": f"{self.base}/hooks/"}[service]

    def connection_values(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """(settings, secrets) of a connection to each fake, by provider: what `connections add` would store."""
        return {
            "slack": ({"base_url": self.url("slack")}, {"bot_token": self.slack_token}),
            "teams_webhook": ({}, {"url": self.url("teams")}),
            "teams_bot": ({"client_id": self.app_id, "tenant_id": "botframework.com", "authority_host": self.base,
                           "service_url": self.url("bot")}, {"client_secret": self.app_secret}),
            "trello": ({"base_url": self.url("trello")}, {"api_key": self.trello_key, "token": self.trello_token}),
            "asana": ({"base_url": self.url("asana")}, {"token": self.asana_token}),
            "graph": ({"client_id": self.graph_client_id, "tenant_id": "acme.example", "authority_host": self.base,
                       "base_url": self.url("graph")}, {"client_secret": self.graph_secret}),
            "webhook": ({"username": self.hook_user}, {"password": self.hook_password}),
        }

    def secrets(self) -> list[str]:
        """Every credential the fakes accept or issue (for scans that none leaked)."""
        return [self.slack_token, self.trello_key, self.trello_token, self.asana_token, self.teams_signature,
                self.app_secret, self.graph_secret, self.hook_password, *self.tokens]

    # --- faults and what was received ----------------------------------------------------------

    def rate_limit(self, service: str, times: int = 1, retry_after: int | None = 30) -> None:
        """The next `times` calls to `service` get its 429 (Trello sends no Retry-After: pass None)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._lock:
            self._faults[service] += [Answer(429, RATE_LIMITED[service], headers)] * times

    def outage(self, service: str, times: int = 1, status: int = 503) -> None:
        with self._lock:
            self._faults[service] += [Answer(status, UNAVAILABLE[service])] * times

    def reset(self) -> None:
        """Forget what was received, the tokens issued and any fault not yet served (between tests)."""
        with self._lock:
            self.requests.clear()
            self.tokens.clear()
            self._faults.clear()

    def received(self, service: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.service == service]

    def emails(self) -> list[Message]:
        """Messages Graph accepted (MIME, decoded)."""
        return [message_from_bytes(base64.b64decode(r.body)) for r in self.received("graph")
                if r.path.endswith("/sendMail") and r.status == 202]

    # --- the protocols ---------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Answer:
        with self._lock:
            self.requests.append(request)
            faults = self._faults.get(request.service)
            fault = faults.pop(0) if faults else None
        result: Answer = fault or getattr(self, f"_{request.service}")(request)
        request.status = result.status
        return result

    def _bearer(self, request: Recorded) -> str | None:
        value = request.headers.get("authorization", "")
        return value[len("Bearer "):] if value.startswith("Bearer ") else None

    def _slack(self, request: Recorded) -> Answer:
        if self._bearer(request) != self.slack_token:
            return Answer(200, {"ok": False, "error": "invalid_auth"})
        method = request.path.rsplit("/", 1)[-1]
        if method == "auth.test":
            return Answer(200, {"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "crm-bot",
                                "team_id": "T0ACME", "user_id": "U0BOT", "bot_id": "B0BOT"})
        if method != "chat.postMessage":
            return Answer(200, {"ok": False, "error": "unknown_method"})
        is_json = request.headers.get("content-type", "").startswith("application/json")
        args = request.json() if is_json else {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        channel = str(args.get("channel", ""))
        channel_id = next((cid for cid, name in self.slack_channels.items() if channel in (cid, name, f"#{name}")),
                          None)
        if channel_id is None:
            return Answer(200, {"ok": False, "error": "channel_not_found"})
        if channel_id in self.slack_archived:
            return Answer(200, {"ok": False, "error": "is_archived"})
        if channel_id in self.slack_not_member:
            return Answer(200, {"ok": False, "error": "not_in_channel"})
        if not args.get("text") and not args.get("blocks"):
            return Answer(200, {"ok": False, "error": "no_text"})
        ts = f"{time.time():.6f}"
        return Answer(200, {"ok": True, "channel": channel_id, "ts": ts,
                            "message": {"type": "message", "bot_id": "B0BOT", "text": args.get("text", ""), "ts": ts}})

    def _trello(self, request: Recorded) -> Answer:
        match = re.match(r'OAuth oauth_consumer_key="([^"]*)", oauth_token="([^"]*)"',
                         request.headers.get("authorization", ""))
        key, token = match.groups() if match else (request.query.get("key", [""])[0],
                                                   request.query.get("token", [""])[0])
        if key != self.trello_key:
            return Answer(401, "invalid key")
        if token != self.trello_token:
            return Answer(401, "invalid token")
        if request.path.endswith("/members/me"):
            return Answer(200, {"id": "5a0000000000000000000001", "username": "crmbot", "fullName": "CRM Bot"})
        body = request.json() if request.body else {k: v[0] for k, v in request.query.items()}
        if body.get("idList") not in self.trello_lists:
            return Answer(400, "invalid value for idList")
        if not body.get("name"):
            return Answer(400, "invalid value for name")
        card_id = secrets.token_hex(12)
        return Answer(200, {"id": card_id, "name": body["name"], "desc": body.get("desc", ""),
                            "idList": body["idList"], "due": body.get("due"), "closed": False,
                            "shortUrl": f"https://trello.com/c/{card_id[:8]}",
                            "url": f"https://trello.com/c/{card_id[:8]}/1-card"})

    def _asana(self, request: Recorded) -> Answer:
        if self._bearer(request) != self.asana_token:
            return Answer(401, {"errors": [{"message": "Not Authorized"}]})
        if request.path.endswith("/users/me"):
            return Answer(200, {"data": {"gid": "1200", "name": "CRM Bot", "resource_type": "user"}})
        data = request.json().get("data") if request.body else None
        if not isinstance(data, dict) or not data.get("name"):
            return Answer(400, {"errors": [{"message": "name: Missing input", "help": "See the API docs."}]})
        for project in data.get("projects", []):
            if project not in self.asana_projects:
                return Answer(404, {"errors": [{"message": f"project: Unknown object: {project}"}]})
        gid = str(1202000000000000 + len(self.requests))
        return Answer(201, {"data": {"gid": gid, "resource_type": "task", "name": data["name"],
                                     "notes": data.get("notes", ""), "due_on": data.get("due_on"),
                                     "permalink_url": f"https://app.asana.com/0/0/{gid}"}})

    def _teams(self, request: Recorded) -> Answer:
        if request.query.get("sig", [""])[0] != self.teams_signature:
            return Answer(401, {"error": {"code": "DirectApiAuthorizationRequired",
                                          "message": "The request must be authenticated."}})
        body = request.json()
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if not attachments or attachments[0].get("contentType") != "application/vnd.microsoft.card.adaptive":
            return Answer(400, {"error": {"code": "InvalidRequestContent",
                                          "message": "The request must hold an Adaptive Card attachment."}})
        return Answer(202, None, {"x-ms-workflow-run-id": f"08584{secrets.token_hex(8)}"})

    def _authorized(self, request: Recorded, scope: str) -> bool:
        issued = self.tokens.get(self._bearer(request) or "")
        return issued is not None and issued[1] == scope

    def _bot(self, request: Recorded) -> Answer:
        if not self._authorized(request, BOT_SCOPE):
            return Answer(401, {"message": "Authorization has been denied for this request."})
        match = re.match(r"^/bot/v3/conversations/([^/]+)/activities$", request.path)
        if request.method != "POST" or match is None:
            return Answer(404, {"error": {"code": "NotFound", "message": "Not found."}})
        conversation = unquote(match.group(1))
        if conversation in self.conversations_without_bot:
            return Answer(403, {"error": {"code": "BotNotInConversationRoster",
                                          "message": "The bot is not part of the conversation roster."}})
        if conversation not in self.conversations:
            return Answer(404, {"error": {"code": "ConversationNotFound", "message": "Conversation not found."}})
        return Answer(201, {"id": f"1:{secrets.token_hex(8)}"})

    def _graph(self, request: Recorded) -> Answer:
        if not self._authorized(request, GRAPH_SCOPE):
            return Answer(401, {"error": {"code": "InvalidAuthenticationToken",
                                          "message": "Access token is empty or invalid."}})
        match = re.match(r"^/graph/v1.0/users/([^/]+)/sendMail$", request.path)
        if match is None:
            return Answer(400, {"error": {"code": "BadRequest", "message": "Resource not found for the segment."}})
        user = unquote(match.group(1))
        if user not in self.mailboxes:
            return Answer(404, {"error": {"code": "ErrorInvalidUser",
                                          "message": f"The requested user '{user}' is invalid."}})
        try:
            message_from_bytes(base64.b64decode(request.body, validate=True))
        except ValueError:
            return Answer(400, {"error": {"code": "ErrorMimeContentInvalidBase64String",
                                          "message": "Invalid base64 string for MIME content."}})
        return Answer(202)

    def _login(self, request: Recorded) -> Answer:
        tenant = request.path.strip("/").split("/")[0]
        if request.path.endswith("/.well-known/openid-configuration"):
            root = f"{self.base}/{tenant}"
            return Answer(200, {"token_endpoint": f"{root}/oauth2/v2.0/token",
                                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                                "issuer": f"{root}/v2.0", "token_endpoint_auth_methods_supported": [
                                    "client_secret_post", "private_key_jwt", "client_secret_basic"]})
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        known = {self.app_id: self.app_secret, self.graph_client_id: self.graph_secret}
        if form.get("grant_type") != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"})
        if known.get(form.get("client_id", "")) != form.get("client_secret"):
            return Answer(401, {"error": "invalid_client", "error_codes": [7000215], "error_description":
                                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
                                "the request is the client secret value, not the client secret ID."})
        token = f"eyJ0eXAiOiJKV1QifQ.{secrets.token_urlsafe(32)}"
        with self._lock:
            self.tokens[token] = (form["client_id"], form.get("scope", ""))
        return Answer(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                            "access_token": token})

    def _hooks(self, request: Recorded) -> Answer:
        """/hooks/ok answers 200 (JSON echo), /hooks/status/<code> that status, /hooks/private needs basic
        auth, /hooks/slow/<seconds> answers late."""
        parts = request.path.strip("/").split("/")[1:]
        if parts[:1] == ["status"]:
            return Answer(int(parts[1]), {"error": f"status {parts[1]}"})
        if parts[:1] == ["slow"]:
            time.sleep(float(parts[1]))
        if parts[:1] == ["private"]:
            expected = base64.b64encode(f"{self.hook_user}:{self.hook_password}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return Answer(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Basic realm="hooks"'})
        return Answer(200, {"received": True, "method": request.method}, {"x-request-id": secrets.token_hex(6)})


def _service(path: str) -> str:
    first = path.strip("/").split("/")[0]
    if first in ("slack", "trello", "asana", "teams", "bot", "graph", "hooks"):
        return first
    return "login"


def _handler(fakes: FakeProviders) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Recorded(service=_service(split.path), method=self.command, path=split.path,
                               query=parse_qs(split.query),
                               headers={k.lower(): v for k, v in self.headers.items()},
                               body=self.rfile.read(length) if length else b"")
            answer = fakes.answer(request)
            if isinstance(answer.body, dict | list):
                payload, kind = json.dumps(answer.body).encode(), "application/json; charset=utf-8"
            else:
                payload, kind = (answer.body or "").encode(), "text/plain; charset=utf-8"
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the URLs it would print carry the secrets the scans look for

    return Handler
