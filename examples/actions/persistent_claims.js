/**
 * Persistent custom claims.
 *
 * Claims computed once, at the first login (here: when the user first signed in on this
 * refresh-token chain, and their plan), kept in the refresh token's metadata, and put into the
 * tokens issued on every later refresh exchange, rotations included, without recomputing them.
 *
 * helloguard cannot sign the upstream's tokens: the upstream receives the claims in the
 * `helloguard-claims` request header and puts them into the tokens it issues.
 */
const NAMESPACE = "https://example.com/";

exports.onExecutePostLogin = async (event, api) => {
  const stored = event.refresh_token?.metadata;
  let firstLogin = stored?.first_login;
  let plan = stored?.plan;
  if (!firstLogin) {
    // The first login of this chain: compute once, keep for every later exchange.
    firstLogin = new Date().toISOString();
    plan = event.request.body?.username === "alice" ? "gold" : "basic";
    api.refreshToken.setMetadata("first_login", firstLogin);
    api.refreshToken.setMetadata("plan", plan);
  }
  api.idToken.setCustomClaim(NAMESPACE + "first_login", firstLogin);
  api.accessToken.setCustomClaim(NAMESPACE + "plan", plan);
};
