exports.onExecutePostLogin = async (event, api) => {
  const metadata = event.session?.metadata ?? {};
  const seen = event.security_context ?? {};
  const tenant = event.request.query["ext-tenantId"] ?? metadata.tenant_id ?? "default";
  if (metadata.tenant_id !== tenant) {
    api.session.setMetadata("tenant_id", tenant);
  }
  const logins = Number(metadata.logins ?? "0") + 1;
  api.session.setMetadata("logins", String(logins));
  if (metadata.aa_ja4_stable && metadata.aa_ja4_stable !== seen.ja4_stable) {
    api.authentication.challengeWith({ type: "otp" }, {
      additionalFactors: [{ type: "push-notification" }, { type: "phone" }],
    });
  }
  if (event.helloguard?.decision === "challenge") {
    console.log("built-in challenge", event.helloguard.reason);
  }
  api.idToken.setCustomClaim("https://example.com/tenant", tenant);
  api.accessToken.setCustomClaim("https://example.com/logins", logins);
};
