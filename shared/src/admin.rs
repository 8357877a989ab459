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
//!   time); without it they are open there.
//! * Health (`/healthz`, `/readyz`) and `/time` stay open everywhere: load
//!   balancers and players need them without credentials.

use crate::auth::{bearer, same_secret};
use crate::route::{Route, RouteKind};

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
}

/// Whether `route` is for operators rather than viewers.
pub fn is_admin(route: &Route<'_>) -> bool {
    matches!(route.kind(), RouteKind::Metrics | RouteKind::Api)
}

/// Decides `route` on a `surface` listener, given the configured admin
/// `token` and the request's `Authorization` header value.
pub fn gate(
    route: &Route<'_>,
    surface: Surface,
    token: Option<&str>,
    authorization: Option<&[u8]>,
) -> Gate {
    let admin = is_admin(route);
    let health = route.kind() == RouteKind::Health;
    match surface {
        Surface::Public if admin => return Gate::NotHere,
        Surface::Admin if !admin && !health => return Gate::NotHere,
        _ => {}
    }
    match token {
        Some(expected) if admin => {
            let presented = authorization.and_then(bearer);
            if presented.is_some_and(|p| same_secret(p, expected)) {
                Gate::Pass
            } else {
                Gate::Unauthorized
            }
        }
        _ => Gate::Pass,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn r(path: &str) -> Route<'_> {
        Route::parse(path).unwrap()
    }

    #[test]
    fn admin_routes_need_the_token_only_where_they_are_served() {
        let t = Some("admin-secret-token");
        for path in ["/metrics", "/api/streams", "/api/streams/cam"] {
            assert_eq!(gate(&r(path), Surface::All, None, None), Gate::Pass);
            assert_eq!(gate(&r(path), Surface::All, t, None), Gate::Unauthorized);
            assert_eq!(
                gate(&r(path), Surface::All, t, Some(b"Bearer wrong")),
                Gate::Unauthorized
            );
            assert_eq!(
                gate(
                    &r(path),
                    Surface::Admin,
                    t,
                    Some(b"Bearer admin-secret-token")
                ),
                Gate::Pass
            );
            assert_eq!(
                gate(
                    &r(path),
                    Surface::Public,
                    t,
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
            assert_eq!(gate(&r(path), Surface::Public, t, None), Gate::Pass);
            assert_eq!(gate(&r(path), Surface::All, t, None), Gate::Pass);
            assert_eq!(gate(&r(path), Surface::Admin, t, None), Gate::NotHere);
        }
        for path in ["/healthz", "/readyz", "/time"] {
            for s in [Surface::All, Surface::Public] {
                assert_eq!(gate(&r(path), s, t, None), Gate::Pass, "{path}");
            }
        }
        assert_eq!(gate(&r("/healthz"), Surface::Admin, t, None), Gate::Pass);
    }
}
