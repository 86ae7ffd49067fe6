#!/usr/bin/env node
// Drive every sessions / refresh-token method of the official npm `auth0` package, unchanged, against
// `helloguard serve`, and check answers and typed errors against ../shared/CONTRACT.md §6.
//
//   NODE_EXTRA_CA_CERTS=self-signed.crt node node_sdk.mjs --node-modules DIR --domain 127.0.0.1:8443 \
//       --token JWT --readonly-token JWT --ca self-signed.crt --seed seed.json
//
// Every option also reads an environment variable (HELLOGUARD_SDK_NODE_MODULES, HG_DOMAIN, HG_TOKEN,
// HG_READONLY_TOKEN, HG_CA_FILE, HG_SEED). --token needs all six scopes; --readonly-token only read:sessions
// and read:refresh_tokens (for the 403 cases). --seed is the JSON written by run.sh: for each variant ("node",
// "node-legacy") a demo user with sessions {main, others[2]} and refresh tokens {linked, free[5]}.
//
// Two clients of the package are driven: `ManagementClient` (the current, generated client) and the
// `ManagementClient` of `auth0/legacy` (the v4 client the package still ships; it has 8 of the 13 methods).
// Each row prints `ok <method> ...` or `FAIL <method> ...: why`; the last line is `node: N passed, M failed`,
// and the exit status is 1 on any failure.
//
// Trust: node's fetch reads NODE_EXTRA_CA_CERTS at process start only; when it is not set to --ca, this script
// runs itself again with it set.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { isDeepStrictEqual, parseArgs } from "node:util";

const UNKNOWN_SESSION = "ses_doesnotexist0000000000000000000";
const UNKNOWN_TOKEN = "rt_doesnotexist00000000000000000000";
const RFC3339_MS_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// ---------------------------------------------------------------------------------------------
// The current client. Each row: SDK method, HTTP call, expected outcome, and the check itself.
// Rows run in order and share the seeded records; a row that fails does not stop the others.
// ---------------------------------------------------------------------------------------------
const ROWS = [
  ["sessions.get(...).withRawResponse", "GET /api/v2/sessions/{id}", "200 over https://<domain>/api/v2/", async (t) => {
    const { rawResponse } = await t.c.sessions.get(t.S1).withRawResponse();
    eq(rawResponse.status, 200, "status");
    eq(rawResponse.url, `https://${t.domain}/api/v2/sessions/${t.S1}`, "request URL");
    eq(rawResponse.headers.get("content-type"), "application/json; charset=utf-8", "content-type");
  }],
  ["sessions.get", "GET /api/v2/sessions/{id}", "200 session: id, user_id, dates, device, clients, metadata", async (t) => {
    const s = await t.c.sessions.get(t.S1);
    eq(s.id, t.S1, "id");
    eq(s.user_id, t.user, "user_id");
    for (const k of ["created_at", "updated_at", "authenticated_at", "last_interacted_at", "idle_expires_at", "expires_at"]) {
      check(RFC3339_MS_Z.test(s[k]), `${k} is RFC 3339 UTC with ms, got ${JSON.stringify(s[k])}`);
    }
    eq(s.device.initial_ip, "127.0.0.1", "device.initial_ip");
    check(s.device.initial_user_agent.startsWith("curl/"), `device.initial_user_agent ${s.device.initial_user_agent}`);
    eq(s.clients, [{ client_id: "demo" }], "clients");
    eq(Object.keys(s.session_metadata).sort(), ["ja3", "ja4", "ja4_stable"], "engine metadata keys");
    t.ja4_stable = s.session_metadata.ja4_stable;
  }],
  ["sessions.get", "GET /api/v2/sessions/{unknown}", "NotFoundError 404 inexistent_session", async (t) => {
    await expectError(() => t.c.sessions.get(UNKNOWN_SESSION), "NotFoundError", 404, "inexistent_session",
      "The session does not exist.");
  }],
  ["sessions.get", "GET /api/v2/sessions/{id} with a bad bearer token", "UnauthorizedError 401 invalid_token", async (t) => {
    await expectError(() => t.bad.sessions.get(t.S1), "UnauthorizedError", 401, "invalid_token", "Invalid token");
  }],
  ["sessions.update", "PATCH /api/v2/sessions/{id} {session_metadata}", "200, the map replaced as sent", async (t) => {
    const sent = { tenant: "acme", ja4_stable: t.ja4_stable };
    const s = await t.c.sessions.update(t.S1, { session_metadata: sent });
    eq(s.id, t.S1, "id");
    eq(s.session_metadata, sent, "session_metadata");
    eq((await t.c.sessions.get(t.S1)).session_metadata, sent, "session_metadata read back");
  }],
  ["sessions.update", "PATCH /api/v2/sessions/{id} with a bad key", "BadRequestError 400 invalid_body", async (t) => {
    await expectError(() => t.c.sessions.update(t.S1, { session_metadata: { "bad key": "x" } }), "BadRequestError", 400,
      "invalid_body", "Invalid metadata: Metadata keys may only include letters, numbers, underscores, or hyphens");
  }],
  ["users.sessions.list", "GET /api/v2/users/{user_id}/sessions?take=2", "3 sessions over 2 pages, in created order", async (t) => {
    const pages = await allPages(await t.c.users.sessions.list(t.user, { take: 2 }));
    eq(pages.map((p) => p.length), [2, 1], "page sizes");
    eq(pages.flat().map((s) => s.id), [t.S1, ...t.S_others], "session ids");
    check(pages.flat().every((s) => s.user_id === t.user), "every user_id");
  }],
  ["users.sessions.list", "GET /api/v2/users/{user_id}/sessions?take=0", "ManagementError 400 invalid_uri", async (t) => {
    // This method maps no 400 to BadRequestError (the reference lists none for it): the base class.
    await expectError(() => t.c.users.sessions.list(t.user, { take: 0 }), "ManagementError", 400, "invalid_uri",
      "Query validation error: 'take' must be an integer from 1 to 100.");
  }],
  ["sessions.delete", "DELETE /api/v2/sessions/{id}", "202, then GET is 404; an unknown id is 202 too", async (t) => {
    eq(await t.c.sessions.delete(t.S_others[0]), undefined, "return value");
    await expectError(() => t.c.sessions.get(t.S_others[0]), "NotFoundError", 404, "inexistent_session");
    eq((await t.c.sessions.delete(UNKNOWN_SESSION).withRawResponse()).rawResponse.status, 202, "status for an unknown id");
  }],
  ["refreshTokens.get", "GET /api/v2/refresh-tokens/{id}", "200 refresh token", async (t) => {
    const r = await t.c.refreshTokens.get(t.T[0]);
    eq(r.id, t.T[0], "id");
    eq(r.user_id, t.user, "user_id");
    eq(r.client_id, "demo", "client_id");
    eq(r.session_id, null, "session_id (token request without a session cookie)");
    eq(r.rotating, false, "rotating");
    eq(r.resource_servers, [], "resource_servers");
    eq(r.last_exchanged_at, null, "last_exchanged_at");
    check(RFC3339_MS_Z.test(r.created_at) && RFC3339_MS_Z.test(r.expires_at), "dates RFC 3339 with ms");
    eq(r.device.initial_ip, "127.0.0.1", "device.initial_ip");
    check("ja4_stable" in r.refresh_token_metadata, "engine metadata present");
    eq((await t.c.refreshTokens.get(t.TL)).session_id, t.S1, "session_id of the token requested with the session cookie");
  }],
  ["refreshTokens.get", "GET /api/v2/refresh-tokens/{unknown}", "NotFoundError 404 inexistent_refresh_token", async (t) => {
    await expectError(() => t.c.refreshTokens.get(UNKNOWN_TOKEN), "NotFoundError", 404, "inexistent_refresh_token",
      "The refresh token does not exist.");
  }],
  ["refreshTokens.update", "PATCH /api/v2/refresh-tokens/{id} {refresh_token_metadata}", "200, the map replaced", async (t) => {
    const sent = { device_name: "laptop" };
    const r = await t.c.refreshTokens.update(t.T[0], { refresh_token_metadata: sent });
    eq(r.id, t.T[0], "id");
    eq(r.refresh_token_metadata, sent, "refresh_token_metadata");
  }],
  ["users.refreshToken.list", "GET /api/v2/users/{user_id}/refresh-tokens?take=2", "6 tokens over 3 pages (key tokens)", async (t) => {
    const pages = await allPages(await t.c.users.refreshToken.list(t.user, { take: 2 }));
    eq(pages.map((p) => p.length), [2, 2, 2], "page sizes");
    eq(pages.flat().map((r) => r.id).sort(), [t.TL, ...t.T].sort(), "token ids");
  }],
  ["refreshTokens.list", "GET /api/v2/refresh-tokens?user_id=…&take=2", "6 tokens over 3 pages (key refresh_tokens)", async (t) => {
    const pages = await allPages(await t.c.refreshTokens.list({ user_id: t.user, take: 2 }));
    eq(pages.map((p) => p.length), [2, 2, 2], "page sizes");
    eq(pages.flat().map((r) => r.id).sort(), [t.TL, ...t.T].sort(), "token ids");
    check(pages.flat().every((r) => r.user_id === t.user), "every user_id");
  }],
  ["refreshTokens.list", "GET /api/v2/refresh-tokens?user_id=…&client_id=…", "client filter: demo → 6, other → 0", async (t) => {
    eq((await allPages(await t.c.refreshTokens.list({ user_id: t.user, client_id: "demo" }))).flat().length, 6, "client_id=demo");
    eq((await allPages(await t.c.refreshTokens.list({ user_id: t.user, client_id: "no-such-client" }))).flat(), [],
      "client_id=no-such-client");
  }],
  ["refreshTokens.delete", "DELETE /api/v2/refresh-tokens/{id}", "202, then GET is 404", async (t) => {
    eq(await t.c.refreshTokens.delete(t.T[1]), undefined, "return value");
    await expectError(() => t.c.refreshTokens.get(t.T[1]), "NotFoundError", 404, "inexistent_refresh_token");
  }],
  ["refreshTokens.delete", "DELETE /api/v2/refresh-tokens/{id} with read scopes only", "ForbiddenError 403 insufficient_scope", async (t) => {
    await expectError(() => t.ro.refreshTokens.delete(t.T[4]), "ForbiddenError", 403, "insufficient_scope",
      "Insufficient scope, expected any of: delete:refresh_tokens");
  }],
  ["refreshTokens.revoke", "POST /api/v2/refresh-tokens/revoke {ids:[2]}", "202; both gone, the others live", async (t) => {
    eq(await t.c.refreshTokens.revoke({ ids: [t.T[2], t.T[3]] }), undefined, "return value");
    for (const gone of [t.T[2], t.T[3]]) {
      await expectError(() => t.c.refreshTokens.get(gone), "NotFoundError", 404, "inexistent_refresh_token");
    }
    eq((await t.c.refreshTokens.get(t.T[4])).id, t.T[4], "an unnamed token is still live");
  }],
  ["refreshTokens.revoke", "POST /api/v2/refresh-tokens/revoke {ids, user_id}", "BadRequestError 400 invalid_body", async (t) => {
    // The reference: ids cannot be combined with user_id, client_id or audience.
    await expectError(() => t.c.refreshTokens.revoke({ ids: [t.T[4]], user_id: t.user }), "BadRequestError", 400, "invalid_body");
    eq((await t.c.refreshTokens.get(t.T[4])).id, t.T[4], "nothing revoked by the bad request");
  }],
  ["sessions.revoke", "POST /api/v2/sessions/{id}/revoke with read scopes only", "ForbiddenError 403 insufficient_scope", async (t) => {
    await expectError(() => t.ro.sessions.revoke(t.S1), "ForbiddenError", 403, "insufficient_scope",
      "Insufficient scope, expected all of: delete:sessions,delete:refresh_tokens");
  }],
  ["sessions.revoke", "POST /api/v2/sessions/{id}/revoke", "202; the session and its linked token end", async (t) => {
    eq(await t.c.sessions.revoke(t.S1), undefined, "return value");
    await expectError(() => t.c.sessions.get(t.S1), "NotFoundError", 404, "inexistent_session");
    await expectError(() => t.c.refreshTokens.get(t.TL), "NotFoundError", 404, "inexistent_refresh_token");
    eq((await t.c.refreshTokens.get(t.T[0])).id, t.T[0], "an unlinked token is still live");
  }],
  ["sessions.revoke", "POST /api/v2/sessions/{unknown}/revoke", "NotFoundError 404 inexistent_session", async (t) => {
    await expectError(() => t.c.sessions.revoke(UNKNOWN_SESSION), "NotFoundError", 404, "inexistent_session",
      "The session does not exist.");
  }],
  ["users.refreshToken.delete", "DELETE /api/v2/users/{user_id}/refresh-tokens", "202; the user's list is empty", async (t) => {
    eq(await t.c.users.refreshToken.delete(t.user), undefined, "return value");
    eq((await allPages(await t.c.users.refreshToken.list(t.user))).flat(), [], "tokens left");
  }],
  ["users.sessions.delete", "DELETE /api/v2/users/{user_id}/sessions", "202; the user's list is empty", async (t) => {
    eq(await t.c.users.sessions.delete(t.user), undefined, "return value");
    eq((await allPages(await t.c.users.sessions.list(t.user))).flat(), [], "sessions left");
  }],
];

// ---------------------------------------------------------------------------------------------
// The legacy (v4) client from `auth0/legacy`: parameters in one object, answers {data, status, headers},
// every error a ManagementApiError {statusCode, errorCode, msg}. Lists page by hand with `from`.
// ---------------------------------------------------------------------------------------------
const LEGACY_ROWS = [
  ["sessions.get", "GET /api/v2/sessions/{id}", "200 session", async (t) => {
    const r = await t.c.sessions.get({ id: t.S1 });
    eq(r.status, 200, "status");
    eq(r.data.id, t.S1, "id");
    eq(r.data.user_id, t.user, "user_id");
    eq(r.data.clients, [{ client_id: "demo" }], "clients");
  }],
  ["sessions.get", "GET /api/v2/sessions/{unknown}", "ManagementApiError 404 inexistent_session", async (t) => {
    await expectLegacyError(() => t.c.sessions.get({ id: UNKNOWN_SESSION }), 404, "inexistent_session",
      "The session does not exist.");
  }],
  ["sessions.get", "GET /api/v2/sessions/{id} with a bad bearer token", "ManagementApiError 401 invalid_token", async (t) => {
    await expectLegacyError(() => t.bad.sessions.get({ id: t.S1 }), 401, "invalid_token", "Invalid token");
  }],
  ["users.getSessions", "GET /api/v2/users/{user_id}/sessions?take=2&from=…", "3 sessions over 2 pages", async (t) => {
    const pages = await legacyPages((from) => t.c.users.getSessions({ user_id: t.user, take: 2, from }), "sessions");
    eq(pages.map((p) => p.length), [2, 1], "page sizes");
    eq(pages.flat().map((s) => s.id), [t.S1, ...t.S_others], "session ids");
  }],
  ["sessions.delete", "DELETE /api/v2/sessions/{id}", "202, then GET is 404", async (t) => {
    eq((await t.c.sessions.delete({ id: t.S_others[0] })).status, 202, "status");
    await expectLegacyError(() => t.c.sessions.get({ id: t.S_others[0] }), 404, "inexistent_session");
  }],
  ["refreshTokens.get", "GET /api/v2/refresh-tokens/{id}", "200 refresh token", async (t) => {
    const r = await t.c.refreshTokens.get({ id: t.TL });
    eq(r.status, 200, "status");
    eq(r.data.id, t.TL, "id");
    eq(r.data.session_id, t.S1, "session_id");
    eq(r.data.client_id, "demo", "client_id");
  }],
  ["refreshTokens.get", "GET /api/v2/refresh-tokens/{unknown}", "ManagementApiError 404 inexistent_refresh_token", async (t) => {
    await expectLegacyError(() => t.c.refreshTokens.get({ id: UNKNOWN_TOKEN }), 404, "inexistent_refresh_token",
      "The refresh token does not exist.");
  }],
  ["users.getRefreshTokens", "GET /api/v2/users/{user_id}/refresh-tokens?take=2&from=…", "6 tokens over 3 pages", async (t) => {
    const pages = await legacyPages((from) => t.c.users.getRefreshTokens({ user_id: t.user, take: 2, from }), "tokens");
    eq(pages.map((p) => p.length), [2, 2, 2], "page sizes");
    eq(pages.flat().map((r) => r.id).sort(), [t.TL, ...t.T].sort(), "token ids");
  }],
  ["refreshTokens.delete", "DELETE /api/v2/refresh-tokens/{id}", "202, then GET is 404", async (t) => {
    eq((await t.c.refreshTokens.delete({ id: t.T[1] })).status, 202, "status");
    await expectLegacyError(() => t.c.refreshTokens.get({ id: t.T[1] }), 404, "inexistent_refresh_token");
  }],
  ["refreshTokens.delete", "DELETE /api/v2/refresh-tokens/{id} with read scopes only", "ManagementApiError 403 insufficient_scope", async (t) => {
    await expectLegacyError(() => t.ro.refreshTokens.delete({ id: t.T[4] }), 403, "insufficient_scope",
      "Insufficient scope, expected any of: delete:refresh_tokens");
  }],
  ["users.deleteRefreshTokens", "DELETE /api/v2/users/{user_id}/refresh-tokens", "202; the user's list is empty", async (t) => {
    eq((await t.c.users.deleteRefreshTokens({ user_id: t.user })).status, 202, "status");
    eq((await t.c.users.getRefreshTokens({ user_id: t.user })).data.tokens, [], "tokens left");
  }],
  ["users.deleteSessions", "DELETE /api/v2/users/{user_id}/sessions", "202; the user's list is empty", async (t) => {
    eq((await t.c.users.deleteSessions({ user_id: t.user })).status, 202, "status");
    eq((await t.c.users.getSessions({ user_id: t.user })).data.sessions, [], "sessions left");
  }],
];

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------
class CheckFailed extends Error {}

function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

function eq(got, want, what) {
  if (!isDeepStrictEqual(got, want)) {
    throw new CheckFailed(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

// The call must reject with the SDK's typed error `className` carrying the contract's status and body.
async function expectError(fn, className, status, errorCode, message) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new CheckFailed(`no error, want ${className} ${status} ${errorCode}`);
  if (!(err instanceof SDK.ManagementError)) throw err;
  const body = err.body ?? {};
  const got = [err.constructor.name, err.statusCode, body.errorCode];
  if (!isDeepStrictEqual(got, [className, status, errorCode])) {
    throw new CheckFailed(`got ${got.join(" ")} (${JSON.stringify(body.message)}), want ${className} ${status} ${errorCode}`);
  }
  check(err instanceof (SDK.Management[className] ?? SDK[className]), `instanceof ${className}`);
  eq(body.statusCode, status, "body.statusCode");
  if (message !== undefined) eq(body.message, message, "body.message");
}

async function expectLegacyError(fn, status, errorCode, message) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new CheckFailed(`no error, want ManagementApiError ${status} ${errorCode}`);
  if (!(err instanceof LEGACY.ManagementApiError)) throw err;
  const got = [err.statusCode, err.errorCode];
  if (!isDeepStrictEqual(got, [status, errorCode])) {
    throw new CheckFailed(`got ManagementApiError ${got.join(" ")} (${JSON.stringify(err.msg)}), want ${status} ${errorCode}`);
  }
  if (message !== undefined) eq(err.msg, message, "msg");
}

// Every page of a generated client's Page (the SDK follows `next`), each an array of items.
async function allPages(page) {
  const out = [page.data.slice()];
  while (page.hasNextPage()) {
    await page.getNextPage();
    out.push(page.data.slice());
  }
  return out;
}

// The legacy client returns one page; follow `next` with `from` until it is absent.
async function legacyPages(get, key) {
  const out = [];
  let from;
  for (let i = 0; i < 100; i++) {
    const { data } = await get(from);
    out.push(data[key]);
    if (!data.next) return out;
    from = data.next;
  }
  throw new CheckFailed("more than 100 pages");
}

function describeUnexpected(e) {
  if (e && e.statusCode !== undefined) {
    return `${e.name ?? e.constructor.name} ${e.statusCode} ${JSON.stringify(e.body ?? e.msg)}`;
  }
  return `${e?.name ?? "Error"}: ${e?.message ?? e}${e?.cause ? ` (cause: ${e.cause.code ?? e.cause.message})` : ""}`;
}

async function runVariant(variant, rows, makeClient) {
  const rec = SEED[variant];
  const t = {
    domain: OPTS.domain,
    c: makeClient(OPTS.token),
    ro: makeClient(OPTS["readonly-token"]),
    bad: makeClient("not-a-jwt"),
    user: rec.user_id,
    S1: rec.sessions.main,
    S_others: rec.sessions.others,
    TL: rec.tokens.linked,
    T: rec.tokens.free,
  };
  const results = [];
  for (const [method, http, expect, fn] of rows) {
    const label = `${method} [${variant}] ${http} → ${expect}`;
    try {
      await fn(t);
      console.log(`ok ${label}`);
      results.push(true);
    } catch (e) {
      console.log(`FAIL ${label}: ${e instanceof CheckFailed ? e.message : describeUnexpected(e)}`);
      results.push(false);
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
const { values: OPTS } = parseArgs({
  options: {
    "node-modules": { type: "string", default: process.env.HELLOGUARD_SDK_NODE_MODULES },
    domain: { type: "string", default: process.env.HG_DOMAIN },
    token: { type: "string", default: process.env.HG_TOKEN },
    "readonly-token": { type: "string", default: process.env.HG_READONLY_TOKEN },
    ca: { type: "string", default: process.env.HG_CA_FILE },
    seed: { type: "string", default: process.env.HG_SEED },
  },
});
const missing = Object.entries(OPTS).filter(([, v]) => !v).map(([k]) => `--${k}`);
if (missing.length) {
  console.error(`node_sdk.mjs: missing ${missing.join(", ")}`);
  process.exit(2);
}
if (process.env.NODE_EXTRA_CA_CERTS !== resolve(OPTS.ca) && process.env.NODE_EXTRA_CA_CERTS !== OPTS.ca) {
  const r = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: "inherit",
    env: { ...process.env, NODE_EXTRA_CA_CERTS: resolve(OPTS.ca) },
  });
  process.exit(r.status ?? 2);
}

// The package lives outside this folder: resolve it from the given node_modules.
const requireSdk = createRequire(join(resolve(OPTS["node-modules"]), "noop.js"));
const SDK = requireSdk("auth0");
const LEGACY = requireSdk("auth0/legacy");
const SEED = JSON.parse(readFileSync(OPTS.seed, "utf8"));
const sdkPackage = requireSdk.resolve("auth0/package.json");
const version = JSON.parse(readFileSync(sdkPackage, "utf8")).version;
// auth0/legacy re-exports the package's dependency auth0-legacy (auth0@4): name its version too.
let legacyVersion = "?";
try {
  const legacyMain = createRequire(sdkPackage).resolve("auth0-legacy"); // <pkg>/dist/cjs/index.js
  legacyVersion = JSON.parse(readFileSync(join(dirname(legacyMain), "..", "..", "package.json"), "utf8")).version;
} catch {
  // only for the banner
}

console.log(`auth0 ${version} (legacy ${legacyVersion}) on node ${process.versions.node} against https://${OPTS.domain}`);
const results = [
  ...(await runVariant("node", ROWS, (token) => new SDK.ManagementClient({ domain: OPTS.domain, token }))),
  ...(await runVariant("node-legacy", LEGACY_ROWS, (token) => new LEGACY.ManagementClient({ domain: OPTS.domain, token }))),
];
const passed = results.filter(Boolean).length;
console.log(`node: ${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
