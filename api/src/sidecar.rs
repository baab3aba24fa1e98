//! What the sidecar offers the application, and how the injection webhook
//! tells the application where to find it: defaults and names shared by the
//! sidecar, the webhook and the docs.

/// The header `GET /token` demands. A browser cannot send it cross-origin
/// without a CORS preflight the sidecar never grants, and a server-side
/// request forgery rarely controls headers: the pattern of cloud metadata
/// services (`Metadata-Flavor: Google`) and Vault Agent.
pub const TOKEN_REQUEST_HEADER: &str = "Otpilot-Request";
/// The value [`TOKEN_REQUEST_HEADER`] must have.
pub const TOKEN_REQUEST_HEADER_VALUE: &str = "true";

/// Default port of the local API (`/token`, `/healthz`, `/readyz`, `/metrics`), on 127.0.0.1.
pub const DEFAULT_API_PORT: u16 = 8181;
/// Default port of the authenticating reverse proxy, on 127.0.0.1.
pub const DEFAULT_PROXY_PORT: u16 = 8182;
/// Default port of the admin listener (`/healthz`, `/readyz`, `/metrics`,
/// never `/token`), on the Pod IP: the kubelet's probes and Prometheus.
pub const DEFAULT_ADMIN_PORT: u16 = 8183;
/// Name of the injected container's admin port (probes and PodMonitors
/// refer to it by name).
pub const ADMIN_PORT_NAME: &str = "otpilot-admin";

/// Environment variables the webhook adds to each application container.
pub mod env {
    /// `http://127.0.0.1:<api port>/token`
    pub const TOKEN_URL: &str = "OTPILOT_TOKEN_URL";
    /// `Otpilot-Request: true`, the header `/token` demands.
    pub const TOKEN_HEADER: &str = "OTPILOT_TOKEN_HEADER";
    /// `http://127.0.0.1:<proxy port>`: requests sent here reach the vendor
    /// authenticated.
    pub const PROXY_URL: &str = "OTPILOT_PROXY_URL";
    /// Path of the token file, when the pod asked for one.
    pub const TOKEN_FILE: &str = "OTPILOT_TOKEN_FILE";
}
