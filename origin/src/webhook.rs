//! Webhooks to the operator's backend: `on_publish` decides, `on_publish_done`
//! informs. Plain HTTP POST with a JSON body and a timeout.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a webhook call did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL could not be parsed.
    #[error("bad webhook url {0:?}")]
    Url(String),
    /// No answer within the configured timeout.
    #[error("webhook timed out after {0:?}")]
    Timeout(Duration),
    /// Connection or protocol failure.
    #[error("webhook request failed: {0}")]
    Request(String),
}

/// The backend's answer: status and body.
#[derive(Debug, Clone)]
pub struct WebhookAnswer {
    pub status: u16,
    pub body: Bytes,
}

impl WebhookAnswer {
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Clone)]
pub struct Webhooks {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    /// Notifications sent in the background (`on_publish_done`), so that
    /// shutdown can wait for them instead of losing them.
    pending: tokio_util::task::TaskTracker,
}

impl Webhooks {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            pending: tokio_util::task::TaskTracker::new(),
        }
    }

    /// POSTs `body` to `url` in the background, logging a failure as
    /// `what`; [`Webhooks::flush`] waits for it.
    pub fn notify(&self, url: String, body: serde_json::Value, what: &'static str) {
        let hooks = self.clone();
        self.pending.spawn(async move {
            if let Err(e) = hooks.post(&url, &body).await {
                tracing::warn!(error = %e, webhook = what, "webhook failed");
            }
        });
    }

    /// As [`Webhooks::notify`], tried up to `tries` times (1 s, 2 s, ...
    /// apart) until the backend answers 2xx: for notifications the
    /// backend must not miss (`on_record_done`). The last failure is
    /// logged as an error.
    pub fn notify_retrying(
        &self,
        url: String,
        body: serde_json::Value,
        what: &'static str,
        tries: u32,
    ) {
        let hooks = self.clone();
        self.pending.spawn(async move {
            for attempt in 1..=tries.max(1) {
                let why = match hooks.post(&url, &body).await {
                    Ok(a) if a.accepted() => return,
                    Ok(a) => format!("status {}", a.status),
                    Err(e) => e.to_string(),
                };
                if attempt == tries.max(1) {
                    tracing::error!(webhook = what, attempts = attempt, error = %why, "webhook failed; giving up");
                    return;
                }
                tracing::warn!(webhook = what, attempt, error = %why, "webhook failed; retrying");
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
        });
    }

    /// Asks every edge in `edges` (admin base URLs) to drop `stream`'s
    /// cached objects, in the background, with the admin `token`.
    pub fn purge_edges(&self, edges: &[String], stream: &str, token: Option<String>) {
        for edge in edges {
            let url = format!("{}/api/purge?stream={stream}", edge.trim_end_matches('/'));
            let (hooks, token) = (self.clone(), token.clone());
            self.pending.spawn(async move {
                match hooks
                    .post_as(&url, &serde_json::json!({}), token.as_deref())
                    .await
                {
                    Ok(a) if a.accepted() => tracing::debug!(%url, "edge purged"),
                    Ok(a) => tracing::warn!(%url, status = a.status, "edge purge refused"),
                    Err(e) => tracing::warn!(%url, error = %e, "edge purge failed"),
                }
            });
        }
    }

    /// Waits for background notifications, at most the webhook timeout
    /// (plus a second for connecting); returns how many were still
    /// outstanding when it gave up.
    pub async fn flush(&self) -> usize {
        self.pending.close();
        let bound = self.timeout + Duration::from_secs(1);
        match tokio::time::timeout(bound, self.pending.wait()).await {
            Ok(()) => 0,
            Err(_) => self.pending.len(),
        }
    }

    /// POSTs `body` as JSON to `url` and reads the answer (at most 64 KiB).
    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<WebhookAnswer, WebhookError> {
        self.post_as(url, body, None).await
    }

    /// [`Webhooks::post`] with `Authorization: Bearer TOKEN` (an edge's
    /// admin API).
    pub async fn post_as(
        &self,
        url: &str,
        body: &serde_json::Value,
        bearer: Option<&str>,
    ) -> Result<WebhookAnswer, WebhookError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| WebhookError::Url(url.to_string()))?;
        let mut req = http::Request::post(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "livecdn-origin");
        if let Some(t) = bearer {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| WebhookError::Request(e.to_string()))?;
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| WebhookError::Request(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await
                .map_err(|e| WebhookError::Request(e.to_string()))?
                .to_bytes();
            Ok(WebhookAnswer { status, body })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| WebhookError::Timeout(self.timeout))?
    }
}
