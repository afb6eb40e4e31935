//! Outbound channels: mail through the bureau's SMTP server (lettre), and the group robots of
//! WeCom (企业微信) and DingTalk (钉钉), which take the same text message shape
//! (`{"msgtype": "text", "text": {"content": …}}`) and answer `{"errcode": 0}` when they took it.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::rules::{Channel, ChannelKind, SmtpSettings};

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The channel cannot be used as configured.
    #[error("配置错误: {0}")]
    Config(String),
    /// The mail server refused or could not be reached.
    #[error("邮件发送失败: {0}")]
    Smtp(String),
    /// The robot could not be reached or refused.
    #[error("机器人推送失败: {0}")]
    Webhook(String),
}

/// Sends one message on `channel`.
pub async fn send(
    http: &reqwest::Client,
    smtp: Option<&SmtpSettings>,
    channel: &Channel,
    title: &str,
    body: &str,
) -> Result<(), ChannelError> {
    match channel.kind {
        ChannelKind::Email => {
            let smtp =
                smtp.ok_or_else(|| ChannelError::Config("no [smtp] server configured".into()))?;
            send_mail(smtp, &channel.to, title, body).await
        }
        ChannelKind::Wecom | ChannelKind::Dingtalk => {
            let url = channel
                .url
                .as_deref()
                .ok_or_else(|| ChannelError::Config("no url".into()))?;
            send_robot(http, url, &format!("{title}\n{body}")).await
        }
    }
}

async fn send_mail(
    smtp: &SmtpSettings,
    to: &[String],
    title: &str,
    body: &str,
) -> Result<(), ChannelError> {
    let config = |e: &dyn std::fmt::Display| ChannelError::Config(e.to_string());
    let from: Mailbox = smtp.from.parse().map_err(|e| config(&e))?;
    let mut message = Message::builder()
        .from(from)
        .subject(title)
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        message = message.to(address.parse().map_err(|e| config(&e))?);
    }
    // Base64, so that any relay passes the Chinese text through unchanged.
    let body = Body::new_with_encoding(
        format!("{title}\n\n{body}\n"),
        ContentTransferEncoding::Base64,
    )
    .map_err(|_| ChannelError::Config("the message cannot be encoded".into()))?;
    let message = message.body(body).map_err(|e| config(&e))?;
    let mut transport = if smtp.starttls {
        // STARTTLS required, never a fall-back to plain text; the relay's certificate checked
        // against the public roots and the bureau's own CA when one is configured.
        let mut tls = TlsParameters::builder(smtp.host.clone());
        if let Some(ca_file) = &smtp.ca_file {
            tls = tls.add_root_certificate(read_ca_file(ca_file).map_err(ChannelError::Config)?);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| ChannelError::Config(e.to_string()))?;
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).tls(Tls::Required(tls))
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
    }
    .port(smtp.port)
    .timeout(Some(std::time::Duration::from_secs(10)));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| ChannelError::Smtp(e.to_string()))
}

/// The CA certificate in a PEM file.
pub fn read_ca_file(path: &std::path::Path) -> Result<Certificate, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: 文件中没有 PEM 格式的证书", path.display()));
    }
    Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

async fn send_robot(http: &reqwest::Client, url: &str, content: &str) -> Result<(), ChannelError> {
    let failed = |e: &dyn std::fmt::Display| ChannelError::Webhook(e.to_string());
    let response = http
        .post(url)
        .json(&serde_json::json!({"msgtype": "text", "text": {"content": content}}))
        .send()
        .await
        .map_err(|e| failed(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(ChannelError::Webhook(format!("HTTP {status}")));
    }
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    match answer.get("errcode").and_then(serde_json::Value::as_i64) {
        None | Some(0) => Ok(()),
        Some(code) => Err(ChannelError::Webhook(format!(
            "errcode {code}: {}",
            answer["errmsg"].as_str().unwrap_or("")
        ))),
    }
}
