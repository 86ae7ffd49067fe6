#!/usr/bin/env python3
"""Drive every sessions / refresh-token method of the official auth0-python SDK, unchanged,
against `helloguard serve`, and check answers and typed errors against ../shared/CONTRACT.md §6.

    python_sdk.py --domain 127.0.0.1:8443 --token JWT --readonly-token JWT --ca self-signed.crt --seed seed.json

Every option also reads an environment variable (HG_DOMAIN, HG_TOKEN, HG_READONLY_TOKEN, HG_CA_FILE, HG_SEED).
--token needs all six scopes; --readonly-token only read:sessions and read:refresh_tokens (for the 403 cases).
--seed is the JSON written by run.sh: for each variant ("python-sync", "python-async") a user of the demo
upstream with sessions {main, others[2]} and refresh tokens {linked (session_id = main), free[5]}.

The same table of calls runs twice: on ManagementClient (sync methods) and on AsyncManagementClient
(the async methods, a separate code path in the SDK). Each row prints `ok <method> ...` or
`FAIL <method> ...: why`; the last line is `python: N passed, M failed`, and the exit status is 1 on any failure.

Trust: the SDK builds its own httpx client, which honours SSL_CERT_FILE; --ca sets it (before any client exists).
"""
import argparse
import asyncio
import inspect
import json
import os
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, List

UNKNOWN_SESSION = "ses_doesnotexist0000000000000000000"
UNKNOWN_TOKEN = "rt_doesnotexist00000000000000000000"


# --------------------------------------------------------------------------------------------
# The table. Each row: SDK method, HTTP call, expected outcome, and the check itself.
# Rows run in order and share the seeded records; a row that fails does not stop the others.
# --------------------------------------------------------------------------------------------
@dataclass
class Row:
    method: str
    http: str
    expect: str
    check: Callable[["Ctx"], None]


ROWS: List[Row] = []


def row(method: str, http: str, expect: str):
    def register(check):
        ROWS.append(Row(method, http, expect, check))
        return check

    return register


@row("sessions.with_raw_response.get", "GET /api/v2/sessions/{id}", "200 over https://<domain>/api/v2/")
def _(t):
    r = t.run(t.c.sessions.with_raw_response.get(t.S1))
    eq(r.status_code, 200, "status")
    url = str(r._response.url)  # httpx.Response behind the SDK's HttpResponse wrapper
    eq(url, f"https://{t.domain}/api/v2/sessions/{t.S1}", "request URL")
    eq(r.headers.get("content-type"), "application/json; charset=utf-8", "content-type")


@row("sessions.get", "GET /api/v2/sessions/{id}", "200 session: id, user_id, dates, device, clients, metadata")
def _(t):
    s = t.run(t.c.sessions.get(t.S1))
    eq(s.id, t.S1, "id")
    eq(s.user_id, t.user, "user_id")
    for name in ("created_at", "updated_at", "authenticated_at", "last_interacted_at", "idle_expires_at", "expires_at"):
        check(isinstance(getattr(s, name), datetime), f"{name} parsed as datetime, got {getattr(s, name)!r}")
    check(s.created_at <= s.idle_expires_at <= s.expires_at, "created_at <= idle_expires_at <= expires_at")
    eq(s.device.initial_ip, "127.0.0.1", "device.initial_ip")
    check(s.device.initial_user_agent.startswith("curl/"), f"device.initial_user_agent {s.device.initial_user_agent!r}")
    eq([c.client_id for c in s.clients], ["demo"], "clients")
    check(set(s.session_metadata) == {"ja3", "ja4", "ja4_stable"}, f"engine metadata keys {sorted(s.session_metadata)}")
    t.ja4_stable = s.session_metadata["ja4_stable"]


@row("sessions.get", "GET /api/v2/sessions/{unknown}", "NotFoundError 404 inexistent_session")
def _(t):
    expect_error(t, lambda: t.c.sessions.get(UNKNOWN_SESSION), "NotFoundError", 404,
                 "inexistent_session", "The session does not exist.")


@row("sessions.get", "GET /api/v2/sessions/{id} with a bad bearer token", "UnauthorizedError 401 invalid_token")
def _(t):
    expect_error(t, lambda: t.bad.sessions.get(t.S1), "UnauthorizedError", 401, "invalid_token", "Invalid token")


@row("sessions.update", "PATCH /api/v2/sessions/{id} {session_metadata}", "200, the map replaced as sent")
def _(t):
    sent = {"tenant": "acme", "ja4_stable": t.ja4_stable}
    s = t.run(t.c.sessions.update(t.S1, session_metadata=sent))
    eq(s.id, t.S1, "id")
    eq(dict(s.session_metadata), sent, "session_metadata")
    eq(dict(t.run(t.c.sessions.get(t.S1)).session_metadata), sent, "session_metadata read back")


@row("sessions.update", "PATCH /api/v2/sessions/{id} with a bad key", "BadRequestError 400 invalid_body")
def _(t):
    expect_error(t, lambda: t.c.sessions.update(t.S1, session_metadata={"bad key": "x"}), "BadRequestError", 400,
                 "invalid_body", "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens")


@row("users.sessions.list", "GET /api/v2/users/{user_id}/sessions?take=2", "3 sessions over 2 pages, in created order")
def _(t):
    pages = t.pages(t.run(t.c.users.sessions.list(t.user, take=2)))
    eq([len(p) for p in pages], [2, 1], "page sizes")
    eq([s.id for p in pages for s in p], [t.S1] + t.S_others, "session ids")
    check(all(s.user_id == t.user for p in pages for s in p), "every user_id")


@row("users.sessions.list", "GET /api/v2/users/{user_id}/sessions?take=0", "ApiError 400 invalid_uri")
def _(t):
    # This method has no BadRequestError branch in the SDK (the reference lists no 400 for it): the base class.
    expect_error(t, lambda: t.c.users.sessions.list(t.user, take=0), "ApiError", 400,
                 "invalid_uri", "Query validation error: 'take' must be an integer from 1 to 100.")


@row("sessions.delete", "DELETE /api/v2/sessions/{id}", "202, then GET is 404; an unknown id is 202 too")
def _(t):
    eq(t.run(t.c.sessions.delete(t.S_others[0])), None, "return value")
    expect_error(t, lambda: t.c.sessions.get(t.S_others[0]), "NotFoundError", 404, "inexistent_session")
    eq(t.run(t.c.sessions.with_raw_response.delete(UNKNOWN_SESSION)).status_code, 202, "status for an unknown id")


@row("refresh_tokens.get", "GET /api/v2/refresh-tokens/{id}", "200 refresh token")
def _(t):
    r = t.run(t.c.refresh_tokens.get(t.T[0]))
    eq(r.id, t.T[0], "id")
    eq(r.user_id, t.user, "user_id")
    eq(r.client_id, "demo", "client_id")
    eq(r.session_id, None, "session_id (token request without a session cookie)")
    eq(r.rotating, False, "rotating")
    eq(r.resource_servers, [], "resource_servers")
    eq(r.last_exchanged_at, None, "last_exchanged_at")
    check(isinstance(r.created_at, datetime) and isinstance(r.expires_at, datetime), "dates parsed")
    eq(r.device.initial_ip, "127.0.0.1", "device.initial_ip")
    check("ja4_stable" in r.refresh_token_metadata, "engine metadata present")
    linked = t.run(t.c.refresh_tokens.get(t.TL))
    eq(linked.session_id, t.S1, "session_id of the token requested with the session cookie")


@row("refresh_tokens.get", "GET /api/v2/refresh-tokens/{unknown}", "NotFoundError 404 inexistent_refresh_token")
def _(t):
    expect_error(t, lambda: t.c.refresh_tokens.get(UNKNOWN_TOKEN), "NotFoundError", 404,
                 "inexistent_refresh_token", "The refresh token does not exist.")


@row("refresh_tokens.update", "PATCH /api/v2/refresh-tokens/{id} {refresh_token_metadata}", "200, the map replaced")
def _(t):
    sent = {"device_name": "laptop"}
    r = t.run(t.c.refresh_tokens.update(t.T[0], refresh_token_metadata=sent))
    eq(r.id, t.T[0], "id")
    eq(dict(r.refresh_token_metadata), sent, "refresh_token_metadata")


@row("users.refresh_token.list", "GET /api/v2/users/{user_id}/refresh-tokens?take=2", "6 tokens over 3 pages (key tokens)")
def _(t):
    pages = t.pages(t.run(t.c.users.refresh_token.list(t.user, take=2)))
    eq([len(p) for p in pages], [2, 2, 2], "page sizes")
    eq(sorted(r.id for p in pages for r in p), sorted([t.TL] + t.T), "token ids")


@row("refresh_tokens.list", "GET /api/v2/refresh-tokens?user_id=…&take=2", "6 tokens over 3 pages (key refresh_tokens)")
def _(t):
    pages = t.pages(t.run(t.c.refresh_tokens.list(user_id=t.user, take=2)))
    eq([len(p) for p in pages], [2, 2, 2], "page sizes")
    eq(sorted(r.id for p in pages for r in p), sorted([t.TL] + t.T), "token ids")
    check(all(r.user_id == t.user for p in pages for r in p), "every user_id")


@row("refresh_tokens.list", "GET /api/v2/refresh-tokens?user_id=…&client_id=…", "client filter: demo → 6, other → 0")
def _(t):
    eq(len(list(t.items(t.run(t.c.refresh_tokens.list(user_id=t.user, client_id="demo"))))), 6, "client_id=demo")
    eq(list(t.items(t.run(t.c.refresh_tokens.list(user_id=t.user, client_id="no-such-client")))), [],
       "client_id=no-such-client")


@row("refresh_tokens.delete", "DELETE /api/v2/refresh-tokens/{id}", "202, then GET is 404")
def _(t):
    eq(t.run(t.c.refresh_tokens.delete(t.T[1])), None, "return value")
    expect_error(t, lambda: t.c.refresh_tokens.get(t.T[1]), "NotFoundError", 404, "inexistent_refresh_token")


@row("refresh_tokens.delete", "DELETE /api/v2/refresh-tokens/{id} with read scopes only",
     "ForbiddenError 403 insufficient_scope")
def _(t):
    expect_error(t, lambda: t.ro.refresh_tokens.delete(t.T[4]), "ForbiddenError", 403, "insufficient_scope",
                 "Insufficient scope, expected any of: delete:refresh_tokens")


@row("refresh_tokens.revoke", "POST /api/v2/refresh-tokens/revoke {ids:[2]}", "202; both gone, the others live")
def _(t):
    eq(t.run(t.c.refresh_tokens.revoke(ids=[t.T[2], t.T[3]])), None, "return value")
    for gone in (t.T[2], t.T[3]):
        expect_error(t, lambda: t.c.refresh_tokens.get(gone), "NotFoundError", 404, "inexistent_refresh_token")
    eq(t.run(t.c.refresh_tokens.get(t.T[4])).id, t.T[4], "an unnamed token is still live")


@row("refresh_tokens.revoke", "POST /api/v2/refresh-tokens/revoke {ids, user_id}", "BadRequestError 400 invalid_body")
def _(t):
    # The reference: ids cannot be combined with user_id, client_id or audience.
    expect_error(t, lambda: t.c.refresh_tokens.revoke(ids=[t.T[4]], user_id=t.user), "BadRequestError", 400,
                 "invalid_body")
    eq(t.run(t.c.refresh_tokens.get(t.T[4])).id, t.T[4], "nothing revoked by the bad request")


@row("sessions.revoke", "POST /api/v2/sessions/{id}/revoke with read scopes only", "ForbiddenError 403 insufficient_scope")
def _(t):
    expect_error(t, lambda: t.ro.sessions.revoke(t.S1), "ForbiddenError", 403, "insufficient_scope",
                 "Insufficient scope, expected all of: delete:sessions,delete:refresh_tokens")


@row("sessions.revoke", "POST /api/v2/sessions/{id}/revoke", "202; the session and its linked token end")
def _(t):
    eq(t.run(t.c.sessions.revoke(t.S1)), None, "return value")
    expect_error(t, lambda: t.c.sessions.get(t.S1), "NotFoundError", 404, "inexistent_session")
    expect_error(t, lambda: t.c.refresh_tokens.get(t.TL), "NotFoundError", 404, "inexistent_refresh_token")
    eq(t.run(t.c.refresh_tokens.get(t.T[0])).id, t.T[0], "an unlinked token is still live")


@row("sessions.revoke", "POST /api/v2/sessions/{unknown}/revoke", "NotFoundError 404 inexistent_session")
def _(t):
    expect_error(t, lambda: t.c.sessions.revoke(UNKNOWN_SESSION), "NotFoundError", 404,
                 "inexistent_session", "The session does not exist.")


@row("users.refresh_token.delete", "DELETE /api/v2/users/{user_id}/refresh-tokens", "202; the user's list is empty")
def _(t):
    eq(t.run(t.c.users.refresh_token.delete(t.user)), None, "return value")
    eq(list(t.items(t.run(t.c.users.refresh_token.list(t.user)))), [], "tokens left")


@row("users.sessions.delete", "DELETE /api/v2/users/{user_id}/sessions", "202; the user's list is empty")
def _(t):
    eq(t.run(t.c.users.sessions.delete(t.user)), None, "return value")
    eq(list(t.items(t.run(t.c.users.sessions.list(t.user)))), [], "sessions left")


# --------------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------------
class CheckFailed(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def eq(got: Any, want: Any, what: str) -> None:
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


def expect_error(t, fn, cls_name, status, error_code, message=None):
    """The call must raise the SDK's typed error `cls_name` with the contract's status and body."""
    from auth0.management.core.api_error import ApiError

    try:
        t.run(fn())
    except ApiError as e:
        body = e.body if isinstance(e.body, dict) else {}
        got = (type(e).__name__, e.status_code, body.get("errorCode"))
        if got != (cls_name, status, error_code):
            raise CheckFailed(f"got {got[0]} {got[1]} {got[2]} ({body.get('message')!r}), "
                              f"want {cls_name} {status} {error_code}")
        eq(body.get("statusCode"), status, "body.statusCode")
        if message is not None:
            eq(body.get("message"), message, "body.message")
        return
    raise CheckFailed(f"no error raised, want {cls_name} {status} {error_code}")


@dataclass
class Ctx:
    variant: str
    domain: str
    c: Any  # client with every scope
    ro: Any  # client with read scopes only
    bad: Any  # client with an invalid token
    loop: Any  # event loop for the async variant, else None
    user: str
    S1: str
    S_others: List[str]
    TL: str
    T: List[str]
    ja4_stable: str = field(default="")

    def run(self, value):
        """Sync client: the value itself. Async client: the awaited coroutine."""
        return self.loop.run_until_complete(value) if inspect.isawaitable(value) else value

    def pages(self, pager) -> List[list]:
        """All pages of a SyncPager / AsyncPager, each a list of items (the SDK follows `next`)."""
        if hasattr(pager, "__aiter__"):
            async def collect():
                return [list(p.items or []) async for p in pager.iter_pages()]

            return self.loop.run_until_complete(collect())
        return [list(p.items or []) for p in pager.iter_pages()]

    def items(self, pager):
        return [item for page in self.pages(pager) for item in page]


def run_variant(variant: str, make_client, args, seed, loop) -> List[bool]:
    rec = seed[variant]
    t = Ctx(variant=variant, domain=args.domain, loop=loop,
            c=make_client(args.token), ro=make_client(args.readonly_token), bad=make_client("not-a-jwt"),
            user=rec["user_id"], S1=rec["sessions"]["main"], S_others=rec["sessions"]["others"],
            TL=rec["tokens"]["linked"], T=rec["tokens"]["free"])
    results = []
    for r in ROWS:
        label = f"{r.method} [{variant}] {r.http} → {r.expect}"
        try:
            r.check(t)
            print(f"ok {label}", flush=True)
            results.append(True)
        except CheckFailed as e:
            print(f"FAIL {label}: {e}", flush=True)
            results.append(False)
        except Exception as e:  # an SDK error we did not expect, with its status and body when it has one
            detail = f"{type(e).__name__}"
            if hasattr(e, "status_code"):
                detail += f" {e.status_code} {getattr(e, 'body', '')}"
            else:
                detail += f": {e}"
                if os.environ.get("HG_SDK_DEBUG"):
                    traceback.print_exc()
            print(f"FAIL {label}: {detail}", flush=True)
            results.append(False)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--domain", default=os.environ.get("HG_DOMAIN"), help="host:port of helloguard's listener")
    p.add_argument("--token", default=os.environ.get("HG_TOKEN"), help="bearer token with every scope")
    p.add_argument("--readonly-token", default=os.environ.get("HG_READONLY_TOKEN"), help="bearer token, read scopes")
    p.add_argument("--ca", default=os.environ.get("HG_CA_FILE"), help="helloguard's certificate (PEM)")
    p.add_argument("--seed", default=os.environ.get("HG_SEED"), help="seed JSON written by run.sh")
    args = p.parse_args()
    missing = [k for k in ("domain", "token", "readonly_token", "ca", "seed") if not getattr(args, k)]
    if missing:
        p.error("missing: " + ", ".join("--" + m.replace("_", "-") for m in missing))
    os.environ["SSL_CERT_FILE"] = args.ca  # read by httpx when the SDK creates its client
    with open(args.seed) as f:
        seed = json.load(f)

    from importlib.metadata import version
    from auth0.management import AsyncManagementClient, ManagementClient

    print(f"auth0-python {version('auth0-python')} against https://{args.domain}", flush=True)
    results = run_variant("python-sync", lambda tok: ManagementClient(domain=args.domain, token=tok), args, seed, None)
    loop = asyncio.new_event_loop()
    try:
        results += run_variant("python-async", lambda tok: AsyncManagementClient(domain=args.domain, token=tok),
                               args, seed, loop)
    finally:
        loop.close()
    passed = sum(results)
    print(f"python: {passed} passed, {len(results) - passed} failed", flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
