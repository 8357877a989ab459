//! The admin surface: which listener serves `/metrics` and `/api`, and the
//! bearer token that guards them. One decision, used by the origin and the
//! edge alike.
//!
//! * A listener is [`Surface::All`] (the default: one port serves
//!   everything), [`Surface::Public`] (playback only, when a separate admin
//!   listener is configured) or [`Surface::Admin`] (that admin listener:
//!   metrics, API and health only).
//! * With an admin token configured, admin routes need `Authorization:
//!   Bearer TOKEN` on whichever listener serves them (compared in constant
//!   time); without it, reads are open there.
//! * Writes (any method but GET, HEAD, OPTIONS: creating a channel,
//!   rotating a key, stopping a stream, purging) fail closed: without a
//!   token they are served only on an admin listener, which the operator
//!   binds where only operators reach it.
//! * Reads of public data (a stream's state and health, not keys or
//!   metrics) may be opened to anyone with [`Policy::public_reads`], for a
//!   public status page.
//! * Health (`/healthz`, `/readyz`) and `/time` stay open everywhere: load
//!   balancers and players need them without credentials.

use crate::auth::{bearer, same_secret};
use crate::route::{ChannelObject, Route, RouteKind};

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Everything: playback, health and admin.
    All,
    /// Playback and health; admin routes are 404 here.
    Public,
    /// Admin and health; playback routes are 404 here.
    Admin,
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Serve it.
    Pass,
    /// This listener does not serve the route: 404.
    NotHere,
    /// An admin route without the right bearer token: 401.
    Unauthorized,
    /// A write with no admin token configured, on a listener that is not
    /// the admin one: 403.
    WritesClosed,
}

/// The operator's admin settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy<'a> {
    /// The admin bearer token, if configured.
    pub token: Option<&'a str>,
    /// Public data may be read without the token.
    pub public_reads: bool,
}

/// Whether `route` is for operators rather than viewers.
pub fn is_admin(route: &Route<'_>) -> bool {
    matches!(route.kind(), RouteKind::Metrics | RouteKind::Api)
}

/// Whether `route` reads only what a viewer may know: a stream's state,
/// health and viewer count.
pub fn is_public_read(route: &Route<'_>) -> bool {
    matches!(
        route,
        Route::ApiStreams
            | Route::ApiStream(_)
            | Route::ApiChannel {
                object: ChannelObject::Stream,
                ..
            }
    )
}

/// Decides `route` on a `surface` listener under `policy`, for a `write`
/// (or read) with the request's `Authorization` header value.
pub fn gate(
    route: &Route<'_>,
    surface: Surface,
    policy: Policy<'_>,
    write: bool,
    authorization: Option<&[u8]>,
) -> Gate {
    let admin = is_admin(route);
    let health = route.kind() == RouteKind::Health;
    match surface {
        Surface::Public if admin => return Gate::NotHere,
        Surface::Admin if !admin && !health => return Gate::NotHere,
        _ => {}
    }
    if !admin {
        return Gate::Pass;
    }
    match policy.token {
        Some(expected) => {
            if !write && policy.public_reads && is_public_read(route) {
                return Gate::Pass;
            }
            let presented = authorization.and_then(bearer);
            if presented.is_some_and(|p| same_secret(p, expected)) {
                Gate::Pass
            } else {
                Gate::Unauthorized
            }
        }
        None if write && surface != Surface::Admin => Gate::WritesClosed,
        None => Gate::Pass,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn r(path: &str) -> Route<'_> {
        Route::parse(path).unwrap()
    }

    fn pol(token: Option<&str>) -> Policy<'_> {
        Policy {
            token,
            public_reads: false,
        }
    }

    #[test]
    fn writes_need_the_token_or_the_admin_listener() {
        let t = Some("admin-secret-token");
        let ok = Some(&b"Bearer admin-secret-token"[..]);
        for path in [
            "/api/channels",
            "/api/channels/cam/keys",
            "/api/channels/cam/stop",
        ] {
            let route = r(path);
            assert_eq!(
                gate(&route, Surface::All, pol(t), true, None),
                Gate::Unauthorized
            );
            assert_eq!(gate(&route, Surface::All, pol(t), true, ok), Gate::Pass);
            // No token configured: closed except on the admin listener.
            assert_eq!(
                gate(&route, Surface::All, pol(None), true, None),
                Gate::WritesClosed
            );
            assert_eq!(
                gate(&route, Surface::Admin, pol(None), true, None),
                Gate::Pass
            );
            assert_eq!(
                gate(&route, Surface::Public, pol(None), true, None),
                Gate::NotHere
            );
        }
    }

    #[test]
    fn public_reads_open_stream_state_only() {
        let open = Policy {
            token: Some("admin-secret-token"),
            public_reads: true,
        };
        for path in [
            "/api/streams",
            "/api/streams/cam",
            "/api/channels/cam/stream",
        ] {
            assert_eq!(
                gate(&r(path), Surface::All, open, false, None),
                Gate::Pass,
                "{path}"
            );
            assert_eq!(
                gate(&r(path), Surface::All, open, true, None),
                Gate::Unauthorized
            );
        }
        for path in [
            "/api/channels",
            "/api/channels/cam",
            "/api/channels/cam/keys",
            "/metrics",
        ] {
            assert_eq!(
                gate(&r(path), Surface::All, open, false, None),
                Gate::Unauthorized,
                "{path}"
            );
        }
    }

    #[test]
    fn admin_routes_need_the_token_only_where_they_are_served() {
        let t = Some("admin-secret-token");
        for path in ["/metrics", "/api/streams", "/api/streams/cam"] {
            assert_eq!(
                gate(&r(path), Surface::All, pol(None), false, None),
                Gate::Pass
            );
            assert_eq!(
                gate(&r(path), Surface::All, pol(t), false, None),
                Gate::Unauthorized
            );
            assert_eq!(
                gate(&r(path), Surface::All, pol(t), false, Some(b"Bearer wrong")),
                Gate::Unauthorized
            );
            assert_eq!(
                gate(
                    &r(path),
                    Surface::Admin,
                    pol(t),
                    false,
                    Some(b"Bearer admin-secret-token")
                ),
                Gate::Pass
            );
            assert_eq!(
                gate(
                    &r(path),
                    Surface::Public,
                    pol(t),
                    false,
                    Some(b"Bearer admin-secret-token")
                ),
                Gate::NotHere
            );
        }
    }

    #[test]
    fn playback_and_health_never_need_the_admin_token() {
        let t = Some("admin-secret-token");
        for path in ["/live/cam/master.m3u8", "/live/cam/source/1.2.m4s", "/"] {
            assert_eq!(
                gate(&r(path), Surface::Public, pol(t), false, None),
                Gate::Pass
            );
            assert_eq!(
                gate(&r(path), Surface::All, pol(t), false, None),
                Gate::Pass
            );
            assert_eq!(
                gate(&r(path), Surface::Admin, pol(t), false, None),
                Gate::NotHere
            );
        }
        for path in ["/healthz", "/readyz", "/time"] {
            for s in [Surface::All, Surface::Public] {
                assert_eq!(gate(&r(path), s, pol(t), false, None), Gate::Pass, "{path}");
            }
        }
        assert_eq!(
            gate(&r("/healthz"), Surface::Admin, pol(t), false, None),
            Gate::Pass
        );
    }
}
