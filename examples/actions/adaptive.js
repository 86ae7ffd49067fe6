/**
 * Adaptive security, as the reference writes it: remember the client's TLS fingerprint at the
 * first login, compare it at each later login or refresh exchange, and on a change ask for a
 * second factor: a one-time password, else a push notification or a phone call.
 *
 * `COMPARE` is the fingerprint compared. The reference compares `ja3` and `ja4`; Chromium shuffles
 * its extension order on every connection, so its `ja3` changes each time and it would be
 * challenged at every login. `ja4_stable` (helloguard's) ignores that order and what TLS
 * resumption adds, so it stays put for one browser.
 */
const COMPARE = ["ja4_stable"];

exports.onExecutePostLogin = async (event, api) => {
  const seen = event.security_context ?? {};
  const record = event.transaction?.protocol === "oauth2-refresh-token" ? event.refresh_token : event.session;
  const write = event.transaction?.protocol === "oauth2-refresh-token" ? api.refreshToken : api.session;
  const stored = record?.metadata ?? {};

  const first = COMPARE.every((name) => stored["aa_" + name] === undefined);
  if (first) {
    for (const name of COMPARE) {
      if (seen[name]) write.setMetadata("aa_" + name, seen[name]);
    }
    return;
  }
  const changed = COMPARE.some((name) => stored["aa_" + name] !== seen[name]);
  if (changed) {
    api.authentication.challengeWith({ type: "otp" }, {
      additionalFactors: [{ type: "push-notification" }, { type: "phone" }],
    });
  }
};
