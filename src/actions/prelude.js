// The sandbox every Action runs in, set up once per runtime. Everything the reference's Actions can
// reach and helloguard supplies is defined here; the rest (network, files, timers, `process`) does
// not exist. Host functions: `__hg_uuid()` (random UUID v4) and `__hg_log(level, text)`.
"use strict";
(function (global) {
  const uuid = global.__hg_uuid;
  const log = global.__hg_log;
  delete global.__hg_uuid;
  delete global.__hg_log;
  const text = (args) => args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  global.console = Object.freeze({
    log: (...args) => log("info", text(args)),
    info: (...args) => log("info", text(args)),
    warn: (...args) => log("warn", text(args)),
    error: (...args) => log("error", text(args)),
  });
  global.crypto = Object.freeze({ randomUUID: () => uuid() });
  global.require = (name) => {
    throw new Error(`Cannot find module '${name}': require is not available in helloguard Actions`);
  };

  // One invocation's `api`, and the requests it collects (read back by helloguard as JSON).
  global.__hg_api = () => {
    const requests = {
      session: [],
      refresh_token: [],
      challenge: null,
      deny: null,
      claims: { id_token: {}, access_token: {} },
    };
    const metadata = (list) =>
      Object.freeze({
        // `undefined` is not `null` (which deletes): JSON would turn it into `null`, so it travels as
        // an object, which fails validation as a non-string value would.
        setMetadata: (key, value) => void list.push(["set", key, value === undefined ? { undefined: true } : value]),
        deleteMetadata: (key) => void list.push(["delete", key]),
        evictMetadata: () => void list.push(["evict"]),
      });
    const factor = (f) => (f && typeof f === "object" ? f.type : f);
    const api = Object.freeze({
      session: metadata(requests.session),
      refreshToken: metadata(requests.refresh_token),
      authentication: Object.freeze({
        challengeWith: (primary, options) => {
          const more = (options && options.additionalFactors) || [];
          requests.challenge = [factor(primary), ...more.map(factor)];
        },
        challengeWithAny: (factors) => {
          requests.challenge = (factors || []).map(factor);
        },
      }),
      access: Object.freeze({
        deny: (reason) => {
          requests.deny = String(reason === undefined ? "Access denied" : reason);
        },
      }),
      idToken: Object.freeze({
        setCustomClaim: (name, value) => {
          requests.claims.id_token[String(name)] = value;
        },
      }),
      accessToken: Object.freeze({
        setCustomClaim: (name, value) => {
          requests.claims.access_token[String(name)] = value;
        },
      }),
    });
    return [api, requests];
  };
})(globalThis);
