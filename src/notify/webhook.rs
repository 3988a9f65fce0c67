//! A webhook channel: the notice's JSON document POSTed to a URL, through the same HTTP
//! client the adapters use (retries with backoff on 5xx, 429 and transport errors, an
//! institution's CA bundle and proxies honoured). The URL is a secret — chat webhooks
//! carry their token in it — so it never shows in logs or errors.

use conpere_connectors::http::{
    header, http_url, HttpClient, HttpSettings, Outcome, RequestSpec, Url,
};
use std::time::Duration;

/// A configured webhook.
pub struct Webhook {
    client: HttpClient,
    url: Url,
    operation: String,
}

impl Webhook {
    /// The webhook of channel `name`: `url` and `token` are the resolved secrets.
    pub fn new(
        name: &str,
        url: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Webhook> {
        let url = http_url(url).map_err(|reason| {
            anyhow::anyhow!("[notifications.{name}]: the webhook URL is not usable: {reason}")
        })?;
        let settings = HttpSettings {
            connect_timeout: timeout.as_secs_f64(),
            request_timeout: timeout.as_secs_f64(),
            concurrency: 1,
            retries: 3,
            retry_initial_delay_ms: 1_000,
            retry_max_delay_ms: 30_000,
            max_body_bytes: 1 << 20,
            ..HttpSettings::default()
        };
        let mut builder = HttpClient::builder(&settings);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let client = builder
            .build()
            .map_err(|e| anyhow::anyhow!("[notifications.{name}]: {e}"))?;
        Ok(Webhook {
            client,
            url,
            operation: format!("webhook `{name}`"),
        })
    }

    /// POSTs `document`; any 2xx is accepted.
    pub async fn send(&self, document: &serde_json::Value) -> anyhow::Result<()> {
        let request = RequestSpec::post(self.url.clone(), self.operation.clone())
            .secret_url()
            .header(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            )
            .body(serde_json::to_vec(document)?);
        self.client.send(request, Outcome::by_status).await?;
        Ok(())
    }
}
