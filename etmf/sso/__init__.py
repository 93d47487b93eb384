"""Single sign-on: identity providers (OpenID Connect today), sign-in with just-in-time
provisioning and claim → role mapping, and re-authentication at the provider for signing."""
