/**
 * Transient login data.
 *
 * What the login came from (its user agent, language and address) and how it was authenticated,
 * kept in the session's metadata for as long as the session lives, and gone with it. Metadata
 * values are at most 255 characters, so longer user agents are cut to fit.
 */
const MAX = 255;

exports.onExecutePostLogin = async (event, api) => {
  if (event.session?.metadata?.login_user_agent) {
    return; // Recorded when the session started.
  }
  const agent = event.request.user_agent ?? "";
  api.session.setMetadata("login_user_agent", agent.slice(0, MAX));
  api.session.setMetadata("login_ip", event.request.ip);
  if (event.request.language) {
    api.session.setMetadata("login_language", event.request.language);
  }
  // A login on a session already bound to this client's fingerprint adds that to the password.
  const bound = event.helloguard?.reason === "fingerprint_match";
  api.session.setMetadata("assurance", bound ? "password+fingerprint" : "password");
};
