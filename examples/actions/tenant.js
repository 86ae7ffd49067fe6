/**
 * A tenant identifier.
 *
 * The login names the tenant in its query (`/login?ext-tenantId=acme`); the Action keeps it in
 * the session's metadata, and with `[headers] forward_session_metadata = ["tenant_id"]`
 * helloguard sends it to the application on every request of the session, in the
 * `helloguard-session-metadata` header.
 */
exports.onExecutePostLogin = async (event, api) => {
  const tenant = event.request.query["ext-tenantId"];
  if (tenant && event.session?.metadata?.tenant_id !== tenant) {
    api.session.setMetadata("tenant_id", tenant);
  }
};
