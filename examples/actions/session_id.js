/**
 * A unique session id.
 *
 * Created once, when the session starts, and carried for the whole session: in the session's
 * metadata, in the metadata of every refresh token issued in it (rotations keep it), and in the
 * tokens' claims, so the application can correlate every call with one session.
 */
exports.onExecutePostLogin = async (event, api) => {
  const existing = event.session?.metadata?.sid ?? event.refresh_token?.metadata?.sid;
  const sid = existing ?? crypto.randomUUID();
  if (!event.session?.metadata?.sid && event.session) {
    api.session.setMetadata("sid", sid);
  }
  if (!event.refresh_token?.metadata?.sid) {
    api.refreshToken.setMetadata("sid", sid);
  }
  api.idToken.setCustomClaim("https://example.com/sid", sid);
  api.accessToken.setCustomClaim("https://example.com/sid", sid);
};
