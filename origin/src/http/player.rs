//! The player page (embedded) and its engines' scripts (hls.js, Shaka
//! Player, dash.js, from the npm packages on disk: they are not copied
//! into the repository, and the page must work offline).

use super::body::{self, Body};
use super::HttpError;
use crate::OriginState;
use bytes::Bytes;
use http::{header, HeaderValue, Response};
use livecdn_shared::route::Script;
use std::path::PathBuf;

const PAGE: &str = include_str!("../../../player/index.html");
const CHAT: &str = include_str!("../../../player/chat.js");

pub fn page() -> Response<Body> {
    let mut resp = Response::new(body::full(Bytes::from_static(PAGE.as_bytes())));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Where hls.js is looked for: the configured directory, `LIVECDN_PLAYER_DIR`,
/// then `player/node_modules/hls.js/dist` of the source tree.
pub fn player_dir(state: &OriginState) -> PathBuf {
    state
        .config
        .http
        .player_dir
        .clone()
        .or_else(|| std::env::var_os("LIVECDN_PLAYER_DIR").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../player/node_modules/hls.js/dist"
            ))
        })
}

/// A player engine's script. hls.js comes from [`player_dir`]; the others
/// from the `node_modules` that directory lies in (`hls.js/dist` is two
/// levels down), as `npm ci --prefix player` lays them out.
pub async fn script(state: &OriginState, script: Script) -> Result<Response<Body>, HttpError> {
    let dir = player_dir(state);
    let bytes = match script.package_path() {
        None => Bytes::from_static(CHAT.as_bytes()),
        Some(package_path) => {
            let path = match script {
                Script::HlsJs => dir.join(script.file_name()),
                _ => dir.join("../..").join(package_path),
            };
            let bytes = tokio::fs::read(&path).await.map_err(|_| {
                HttpError::NotFound(
                    "the player's npm packages are not installed: run `npm ci --prefix player`",
                )
            })?;
            Bytes::from(bytes)
        }
    };
    let mut resp = Response::new(body::full(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(resp)
}
