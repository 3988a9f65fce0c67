//! # A real SMTP server that records what it is sent: [`SmtpSink`]
//!
//! The subset of RFC 5321 (with RFC 4954 authentication) that a submission client such
//! as `lettre`'s `AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port)`
//! uses, over a plain TCP connection on `127.0.0.1` (no TLS, no STARTTLS offered):
//!
//! | command | answer |
//! | --- | --- |
//! | (connection) | `220 127.0.0.1 ESMTP conpere-test-sink` |
//! | `EHLO` | multi-line `250` advertising `AUTH PLAIN LOGIN`, `8BITMIME`, `SMTPUTF8` |
//! | `HELO` | `250` |
//! | `AUTH PLAIN` / `AUTH LOGIN` (initial response or `334` continuations) | `235`; any credentials are accepted and recorded |
//! | `MAIL FROM:<…>` | `250` (or the refusal of [`SmtpSink::start_refusing`]) |
//! | `RCPT TO:<…>` | `250` (or the refusal of [`SmtpSink::start_refusing_recipients`]) |
//! | `DATA` | `354`, then the content up to `<CRLF>.<CRLF>`, then `250` |
//! | `RSET`, `NOOP` | `250` |
//! | `QUIT` | `221`, and the connection is closed |
//! | anything else | `502` |
//!
//! Out-of-sequence commands get `503` (`RCPT` before `MAIL`, `DATA` without recipients,
//! a second `MAIL` or `AUTH`), malformed ones `501`. Each connection is served by its
//! own task, so several clients may talk to the sink at once, and a connection may
//! carry several messages. Commands are read line by line from a buffer, so a client
//! may split a line across writes (or pipeline several lines in one write).
//!
//! ```no_run
//! # async fn demo() {
//! use conpere_tests::smtp::SmtpSink;
//! use std::time::Duration;
//!
//! let sink = SmtpSink::start().await;
//! // … configure the code under test with sink.host() and sink.port(), make it send …
//! let mails = sink.wait_for(1, Duration::from_secs(10)).await;
//! assert_eq!(mails[0].header("Subject").as_deref(), Some("Échec de la synchronisation"));
//! # }
//! ```

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The address the sink listens on (and names itself by).
const HOST: &str = "127.0.0.1";

/// How often [`SmtpSink::wait_for`] looks at what has been received.
const POLL: Duration = Duration::from_millis(10);

/// One message accepted by an [`SmtpSink`] (answered `250` after its `DATA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The reverse path of `MAIL FROM`, without the angle brackets and parameters
    /// (empty for the null sender `<>`).
    pub from: String,
    /// The forward paths of the accepted `RCPT TO` commands, in order, without the angle
    /// brackets and parameters.
    pub to: Vec<String>,
    /// The message content as received after `DATA`: headers, blank line and body, with
    /// dot-unstuffing applied (a line starting `..` arrives as `.`) and line endings kept
    /// as the client sent them (CRLF for any conforming client). The CRLF just before the
    /// terminating `.` line belongs to the terminator (`<CRLF>.<CRLF>`), so it is not
    /// part of the content: a message sent by `lettre` is exactly the formatted message.
    /// Bytes that are not UTF-8 are replaced by U+FFFD.
    pub data: String,
    /// The username and password the client authenticated with on this connection
    /// (`AUTH PLAIN` or `AUTH LOGIN`), if it did; for `AUTH PLAIN` the username is the
    /// authentication identity (the authorization identity is dropped).
    pub auth: Option<(String, String)>,
}

impl ReceivedMail {
    /// The value of the first header named `name` (compared case-insensitively), unfolded
    /// (continuation lines joined), trimmed, with RFC 2047 encoded-words
    /// (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`, also `us-ascii` and `iso-8859-1`) decoded, as
    /// `lettre` writes non-ASCII subjects and display names. `None` if there is no such
    /// header.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = split_message(&self.data);
        unfolded_headers(head)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| decode_encoded_words(&value))
    }

    /// The body (what follows the first blank line), decoded according to its
    /// `Content-Transfer-Encoding` (`quoted-printable` or `base64`; anything else is
    /// taken as is) and read as UTF-8 (the only charset `lettre` writes), with line
    /// endings normalized to `\n`. Meant for single-part text bodies: the body of a
    /// multipart message is returned raw.
    pub fn body(&self) -> String {
        let (_, body) = split_message(&self.data);
        let encoding = self
            .header("Content-Transfer-Encoding")
            .map(|e| e.trim().to_ascii_lowercase());
        let decoded = match encoding.as_deref() {
            Some("quoted-printable") => {
                String::from_utf8_lossy(&decode_quoted_printable(body)).into_owned()
            }
            Some("base64") => {
                let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                match decode_base64(&compact) {
                    Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    None => body.to_string(),
                }
            }
            _ => body.to_string(),
        };
        decoded.replace("\r\n", "\n")
    }
}

/// Where a refusing sink answers with its refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Mail,
    Rcpt,
}

/// A refusal configured at start: the reply given instead of `250` at `stage`.
#[derive(Debug, Clone)]
struct Refusal {
    stage: Stage,
    reply: String,
}

/// What the sink's tasks share with the [`SmtpSink`] handle.
#[derive(Debug)]
struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    refused: AtomicUsize,
    refusal: Option<Refusal>,
}

impl Shared {
    fn messages(&self) -> Vec<ReceivedMail> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A real SMTP server on `127.0.0.1` (on a free port) that accepts every message and
/// records it as a [`ReceivedMail`]; see the [module documentation](self) for the
/// protocol it speaks.
///
/// It runs as tasks of the current tokio runtime, started by [`SmtpSink::start`] (or
/// [`SmtpSink::start_refusing`], [`SmtpSink::start_refusing_recipients`]) and stopped
/// when the handle is dropped.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink that accepts every message.
    pub async fn start() -> SmtpSink {
        Self::start_with(None).await
    }

    /// Starts a sink that answers every `MAIL FROM` with `reply`, a complete SMTP reply
    /// line with a 4xx or 5xx code (e.g. `"550 5.7.1 relaying denied"`), so that no
    /// message is ever accepted: for testing delivery failures. [`SmtpSink::refused`]
    /// counts the refusals.
    ///
    /// # Panics
    /// If `reply` does not start with a 4xx or 5xx code.
    pub async fn start_refusing(reply: &str) -> SmtpSink {
        Self::start_with(Some(Refusal {
            stage: Stage::Mail,
            reply: checked_refusal(reply),
        }))
        .await
    }

    /// Like [`SmtpSink::start_refusing`], but the refusal is the answer to every
    /// `RCPT TO` (the `MAIL FROM` is accepted), as a server refusing to relay to the
    /// recipients would; `DATA` then gets `503` for want of recipients.
    ///
    /// # Panics
    /// If `reply` does not start with a 4xx or 5xx code.
    pub async fn start_refusing_recipients(reply: &str) -> SmtpSink {
        Self::start_with(Some(Refusal {
            stage: Stage::Rcpt,
            reply: checked_refusal(reply),
        }))
        .await
    }

    async fn start_with(refusal: Option<Refusal>) -> SmtpSink {
        let listener = TcpListener::bind((HOST, 0))
            .await
            .expect("bind the SMTP sink on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("address of the SMTP sink")
            .port();
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            refused: AtomicUsize::new(0),
            refusal,
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        SmtpSink { port, shared, task }
    }

    /// The port the sink listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host the sink listens on: always `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The messages accepted so far, in the order their `DATA` ended.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages()
    }

    /// How many commands a refusing sink has answered with its refusal (always 0 for a
    /// sink started with [`SmtpSink::start`]): proof that a client did try.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages have been accepted or `timeout` has passed,
    /// then returns the messages accepted so far (which may be fewer than `n` after a
    /// timeout, or more: the caller asserts).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for SmtpSink {
    /// Stops accepting connections and ends the sessions in progress.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `reply` if it is a 4xx or 5xx SMTP reply.
fn checked_refusal(reply: &str) -> String {
    let reply = reply.trim_end().to_string();
    assert!(
        matches!(
            reply.as_bytes(),
            [b'4' | b'5', b'0'..=b'9', b'0'..=b'9', ..]
        ),
        "a refusal is an SMTP reply with a 4xx or 5xx code, not {reply:?}"
    );
    reply
}

/// Accepts connections for ever, each served by its own task (aborted with this one).
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(serve(stream, shared.clone()));
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(POLL).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// One connection; I/O errors just end it.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let _ = session(&mut read, &mut write, &shared).await;
}

/// The envelope of the message being transferred.
#[derive(Debug, Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// The SMTP dialogue of one connection, until `QUIT` or the end of the stream.
async fn session<R, W>(read: &mut R, write: &mut W, shared: &Shared) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    reply(write, &format!("220 {HOST} ESMTP conpere-test-sink")).await?;
    let mut envelope = Envelope::default();
    let mut auth: Option<(String, String)> = None;
    while let Some(line) = read_line(read).await? {
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (line.trim().to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" if arg.is_empty() => reply(write, "501 5.5.4 EHLO needs a domain").await?,
            "EHLO" => {
                envelope = Envelope::default();
                let greeting = format!(
                    "250-{HOST} greets {arg}\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8"
                );
                reply(write, &greeting).await?
            }
            "HELO" if arg.is_empty() => reply(write, "501 5.5.4 HELO needs a domain").await?,
            "HELO" => {
                envelope = Envelope::default();
                reply(write, &format!("250 {HOST}")).await?
            }
            "AUTH" if auth.is_some() => reply(write, "503 5.5.1 Already authenticated").await?,
            "AUTH" => match authenticate(arg, read, write).await? {
                Some(Ok(credentials)) => {
                    auth = Some(credentials);
                    reply(write, "235 2.7.0 Authentication successful").await?
                }
                Some(Err(answer)) => reply(write, answer).await?,
                None => return Ok(()),
            },
            "MAIL" if envelope.from.is_some() => {
                reply(write, "503 5.5.1 Sender already given").await?
            }
            "MAIL" => match path_argument(arg, "FROM:") {
                None => reply(write, "501 5.5.4 Syntax: MAIL FROM:<address>").await?,
                Some(_) if refuses(shared, Stage::Mail) => {
                    reply(write, &shared.refusal.as_ref().expect("refusal").reply).await?
                }
                Some(from) => {
                    envelope.from = Some(from);
                    reply(write, "250 2.1.0 Ok").await?
                }
            },
            "RCPT" if envelope.from.is_none() => {
                reply(write, "503 5.5.1 Need MAIL before RCPT").await?
            }
            "RCPT" => match path_argument(arg, "TO:") {
                None => reply(write, "501 5.5.4 Syntax: RCPT TO:<address>").await?,
                Some(_) if refuses(shared, Stage::Rcpt) => {
                    reply(write, &shared.refusal.as_ref().expect("refusal").reply).await?
                }
                Some(to) if to.is_empty() => {
                    reply(write, "501 5.1.3 Empty recipient address").await?
                }
                Some(to) => {
                    envelope.to.push(to);
                    reply(write, "250 2.1.5 Ok").await?
                }
            },
            "DATA" if envelope.to.is_empty() => {
                reply(write, "503 5.5.1 Need RCPT before DATA").await?
            }
            "DATA" => {
                reply(write, "354 End data with <CR><LF>.<CR><LF>").await?;
                let Some(data) = read_data(read).await? else {
                    return Ok(());
                };
                let done = std::mem::take(&mut envelope);
                let queued = {
                    let mut messages = shared
                        .messages
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    messages.push(ReceivedMail {
                        from: done.from.unwrap_or_default(),
                        to: done.to,
                        data,
                        auth: auth.clone(),
                    });
                    messages.len()
                };
                reply(write, &format!("250 2.0.0 Ok: queued as {queued}")).await?
            }
            "RSET" => {
                envelope = Envelope::default();
                reply(write, "250 2.0.0 Ok").await?
            }
            "NOOP" => reply(write, "250 2.0.0 Ok").await?,
            "QUIT" => {
                reply(write, "221 2.0.0 Bye").await?;
                write.shutdown().await?;
                return Ok(());
            }
            _ => reply(write, "502 5.5.2 Command not recognized").await?,
        }
    }
    Ok(())
}

/// Whether the sink refuses at `stage` (counting the refusal if so).
fn refuses(shared: &Shared, stage: Stage) -> bool {
    let refuses = shared.refusal.as_ref().is_some_and(|r| r.stage == stage);
    if refuses {
        shared.refused.fetch_add(1, Ordering::SeqCst);
    }
    refuses
}

/// The `AUTH` exchange for the argument `arg` of the command (`PLAIN [initial]` or
/// `LOGIN [initial]`): the credentials, or the reply refusing them; `None` if the
/// client went away.
async fn authenticate<R, W>(
    arg: &str,
    read: &mut R,
    write: &mut W,
) -> io::Result<Option<Result<(String, String), &'static str>>>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    const MALFORMED: &str = "501 5.5.2 Cannot decode the response";
    const CANCELLED: &str = "501 5.7.0 Authentication cancelled";
    let mut words = arg.split_whitespace();
    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(initial) => initial,
                None => match challenge(read, write, "").await? {
                    Some(response) => response,
                    None => return Ok(None),
                },
            };
            if response == "*" {
                return Ok(Some(Err(CANCELLED)));
            }
            let Some(decoded) = decode_sasl(&response) else {
                return Ok(Some(Err(MALFORMED)));
            };
            let parts: Vec<&str> = decoded.split('\0').collect();
            match parts.as_slice() {
                [_authorization, username, password] => {
                    Ok(Some(Ok((username.to_string(), password.to_string()))))
                }
                _ => Ok(Some(Err(MALFORMED))),
            }
        }
        "LOGIN" => {
            let username = match initial {
                Some(initial) => initial,
                // "Username:"
                None => match challenge(read, write, "VXNlcm5hbWU6").await? {
                    Some(response) => response,
                    None => return Ok(None),
                },
            };
            if username == "*" {
                return Ok(Some(Err(CANCELLED)));
            }
            let Some(username) = decode_sasl(&username) else {
                return Ok(Some(Err(MALFORMED)));
            };
            // "Password:"
            let Some(password) = challenge(read, write, "UGFzc3dvcmQ6").await? else {
                return Ok(None);
            };
            if password == "*" {
                return Ok(Some(Err(CANCELLED)));
            }
            match decode_sasl(&password) {
                Some(password) => Ok(Some(Ok((username, password)))),
                None => Ok(Some(Err(MALFORMED))),
            }
        }
        "" => Ok(Some(Err(
            "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
        ))),
        _ => Ok(Some(Err("504 5.5.4 Unrecognized authentication type"))),
    }
}

/// Sends the `334` continuation with `prompt` (already base64) and reads the answer.
async fn challenge<R, W>(read: &mut R, write: &mut W, prompt: &str) -> io::Result<Option<String>>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    reply(write, &format!("334 {prompt}")).await?;
    Ok(read_line(read).await?.map(|line| line.trim().to_string()))
}

/// A SASL response (base64, `=` for empty) as text.
fn decode_sasl(response: &str) -> Option<String> {
    if response == "=" {
        return Some(String::new());
    }
    decode_base64(response).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Base64, padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text.trim_end_matches('=')))
        .ok()
}

/// The address of a `FROM:<address> [parameters]` (or `TO:`) argument.
fn path_argument(arg: &str, keyword: &str) -> Option<String> {
    let rest = arg
        .get(..keyword.len())
        .filter(|k| k.eq_ignore_ascii_case(keyword))
        .map(|_| arg[keyword.len()..].trim_start())?;
    match rest.strip_prefix('<') {
        Some(inner) => inner.find('>').map(|end| inner[..end].to_string()),
        None => rest.split_whitespace().next().map(str::to_string),
    }
}

/// Writes a (possibly multi-line) reply and its final CRLF.
async fn reply<W: AsyncWrite + Unpin>(write: &mut W, text: &str) -> io::Result<()> {
    write.write_all(format!("{text}\r\n").as_bytes()).await?;
    write.flush().await
}

/// The next command line without its line ending (CRLF or a bare LF); `None` at the end
/// of the stream.
async fn read_line<R: AsyncBufRead + Unpin>(read: &mut R) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if read.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&line);
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
}

/// The content after `DATA`, up to the line holding a single `.`, dot-unstuffed and
/// without the line ending just before that line; `None` if the stream ends first.
async fn read_data<R: AsyncBufRead + Unpin>(read: &mut R) -> io::Result<Option<String>> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
    if data.ends_with(b"\r\n") {
        data.truncate(data.len() - 2);
    } else if data.ends_with(b"\n") {
        data.truncate(data.len() - 1);
    }
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

/// The header section and the body of a message (split at the first empty line; all
/// header and no body if there is none).
fn split_message(data: &str) -> (&str, &str) {
    let mut offset = 0;
    for line in data.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']).is_empty() {
            return (&data[..offset], &data[offset + line.len()..]);
        }
        offset += line.len();
    }
    (data, "")
}

/// The headers of a header section as (name, value), unfolded: a line starting with a
/// space or tab continues the previous one (only the line break is removed).
fn unfolded_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.to_string()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.trim().to_string();
    }
    headers
}

/// `value` with its RFC 2047 encoded-words decoded; the white space between two adjacent
/// encoded-words is dropped, as the RFC says. Encoded-words that cannot be decoded (an
/// unknown charset, say) are left as they are.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match decode_encoded_word(candidate) {
            Some((decoded, consumed)) => {
                if !(after_word && before.chars().all(char::is_whitespace)) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &candidate[consumed..];
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The encoded-word `=?charset?encoding?text?=` at the start of `text`: its decoded text
/// and its length.
fn decode_encoded_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let encoded = &rest[..end];
    let token = |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace());
    if !token(charset) || encoding.len() != 1 || encoded.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => decode_base64(encoded)?,
        "Q" | "q" => decode_q(encoded),
        _ => return None,
    };
    // RFC 2231 allows a language after the charset: `utf-8*fr`.
    let charset = charset.split('*').next()?.to_ascii_lowercase();
    let decoded = match charset.as_str() {
        "utf-8" | "utf8" | "us-ascii" => String::from_utf8(bytes).ok()?,
        "iso-8859-1" | "latin1" => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => return None,
    };
    Some((decoded, text.len() - rest[end + 2..].len()))
}

/// Decodes an RFC 2047 `Q` encoded word: quoted-printable where `_` is a space.
fn decode_q(text: &str) -> Vec<u8> {
    decode_quoted_printable(&text.replace('_', " "))
}

/// Decodes a quoted-printable text (the `quoted_printable` crate, robust: a malformed
/// sequence is kept as it is).
fn decode_quoted_printable(text: &str) -> Vec<u8> {
    quoted_printable::decode(text, quoted_printable::ParseMode::Robust)
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

    /// How long a test waits for any one reply or message before failing.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A raw SMTP client, to drive the sink line by line.
    struct Client {
        read: BufReader<OwnedReadHalf>,
        write: OwnedWriteHalf,
    }

    impl Client {
        /// Connects, returning the client and the greeting.
        async fn connect(sink: &SmtpSink) -> (Client, String) {
            let stream = TcpStream::connect((sink.host(), sink.port()))
                .await
                .expect("connect to the sink");
            let (read, write) = stream.into_split();
            let mut client = Client {
                read: BufReader::new(read),
                write,
            };
            let greeting = client.reply().await;
            (client, greeting)
        }

        /// The next reply, its lines joined with `\n`.
        async fn reply(&mut self) -> String {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                let n = tokio::time::timeout(PATIENCE, self.read.read_line(&mut line))
                    .await
                    .expect("a reply in time")
                    .expect("read a reply");
                assert!(n > 0, "connection closed awaiting a reply after {lines:?}");
                let line = line.trim_end().to_string();
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    return lines.join("\n");
                }
            }
        }

        async fn send(&mut self, bytes: &str) {
            self.write
                .write_all(bytes.as_bytes())
                .await
                .expect("write to the sink");
            self.write.flush().await.expect("flush");
        }

        /// Sends `bytes` a few at a time, in separate writes.
        async fn trickle(&mut self, bytes: &str, chunk: usize) {
            for piece in bytes.as_bytes().chunks(chunk) {
                self.write
                    .write_all(piece)
                    .await
                    .expect("write to the sink");
                self.write.flush().await.expect("flush");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        /// Sends one command line and returns the reply.
        async fn command(&mut self, line: &str) -> String {
            self.send(&format!("{line}\r\n")).await;
            self.reply().await
        }

        /// Whether the server has closed the connection.
        async fn closed(&mut self) -> bool {
            let mut rest = String::new();
            tokio::time::timeout(PATIENCE, self.read.read_line(&mut rest))
                .await
                .expect("end of stream in time")
                .expect("read")
                == 0
        }
    }

    #[track_caller]
    fn assert_code(reply: &str, code: &str) {
        assert!(reply.starts_with(code), "expected {code}, got {reply:?}");
    }

    #[tokio::test]
    async fn a_raw_dialogue_is_recorded_with_envelope_auth_and_unstuffed_data() {
        let sink = SmtpSink::start().await;
        let (mut client, greeting) = Client::connect(&sink).await;
        assert_eq!(greeting, "220 127.0.0.1 ESMTP conpere-test-sink");

        let ehlo = client.command("EHLO client.example").await;
        let lines: Vec<&str> = ehlo.lines().collect();
        assert!(lines.len() > 2, "{ehlo}");
        assert!(lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("250-")));
        assert!(lines[lines.len() - 1].starts_with("250 "), "{ehlo}");
        assert!(
            lines.iter().any(|l| l[4..] == *"AUTH PLAIN LOGIN"),
            "{ehlo}"
        );
        assert!(lines.iter().any(|l| l[4..] == *"8BITMIME"), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");

        let plain = STANDARD.encode("\0alice\0s\u{e9}cret");
        assert_code(&client.command(&format!("AUTH PLAIN {plain}")).await, "235");
        assert_code(
            &client
                .command("MAIL FROM:<conpere@univ.example> BODY=8BITMIME")
                .await,
            "250",
        );
        assert_code(&client.command("RCPT TO:<ops@univ.example>").await, "250");
        assert_code(&client.command("rcpt to: <dsi@univ.example>").await, "250");
        assert_code(&client.command("DATA").await, "354");
        let subject_tail = STANDARD.encode(" \u{ab} Apog\u{e9}e \u{bb}");
        let message = format!(
            "From: Conpere <conpere@univ.example>\r\n\
             To: ops@univ.example, dsi@univ.example\r\n\
             Subject: =?utf-8?q?=C3=89chec_de_la_synchronisation?=\r\n =?utf-8?b?{subject_tail}?=\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\
             \r\n\
             La synchronisation a =C3=A9chou=C3=A9 =E2=80=94 d=C3=A9tails :\r\n\
             ..ligne qui commence par un point\r\n\
             une ligne coup=C3=A9e par un saut doux =\r\n\
             qui continue ici.\r\n\
             .\r\n"
        );
        client.trickle(&message, 7).await;
        assert_code(&client.reply().await, "250");

        // A second message on the same connection, after RSET, with the null sender.
        assert_code(&client.command("RSET").await, "250");
        assert_code(&client.command("MAIL FROM:<>").await, "250");
        assert_code(&client.command("RCPT TO:<ops@univ.example>").await, "250");
        assert_code(&client.command("DATA").await, "354");
        // Several lines in one write, then the terminator split in two.
        client
            .send("Subject: plain\r\n\r\nline one\r\n..\r\n...two dots")
            .await;
        client.send("\r").await;
        client.send("\n.\r\n").await;
        assert_code(&client.reply().await, "250");
        assert_code(&client.command("NOOP").await, "250");
        assert_code(&client.command("QUIT").await, "221");
        assert!(client.closed().await);

        let mails = sink.messages();
        assert_eq!(mails.len(), 2, "{mails:#?}");
        let first = &mails[0];
        assert_eq!(first.from, "conpere@univ.example");
        assert_eq!(first.to, ["ops@univ.example", "dsi@univ.example"]);
        assert_eq!(
            first.auth,
            Some(("alice".to_string(), "s\u{e9}cret".to_string()))
        );
        assert!(first
            .data
            .starts_with("From: Conpere <conpere@univ.example>\r\n"));
        assert!(first
            .data
            .contains("\r\n.ligne qui commence par un point\r\n"));
        assert!(!first.data.contains(".."));
        assert!(
            first.data.ends_with("qui continue ici."),
            "{:?}",
            first.data
        );
        assert_eq!(
            first.header("subject").as_deref(),
            Some("\u{c9}chec de la synchronisation \u{ab} Apog\u{e9}e \u{bb}")
        );
        assert_eq!(
            first.header("CONTENT-TYPE").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(first.header("X-Missing"), None);
        assert_eq!(
            first.body(),
            "La synchronisation a \u{e9}chou\u{e9} \u{2014} d\u{e9}tails :\n\
             .ligne qui commence par un point\n\
             une ligne coup\u{e9}e par un saut doux qui continue ici."
        );

        let second = &mails[1];
        assert_eq!(second.from, "");
        assert_eq!(second.to, ["ops@univ.example"]);
        assert_eq!(
            second.auth, first.auth,
            "authentication lasts the connection"
        );
        assert_eq!(
            second.data,
            "Subject: plain\r\n\r\nline one\r\n.\r\n..two dots"
        );
        assert_eq!(second.header("Subject").as_deref(), Some("plain"));
        assert_eq!(second.body(), "line one\n.\n..two dots");
    }

    #[tokio::test]
    async fn concurrent_connections_authenticate_by_continuation_or_not_at_all() {
        let sink = SmtpSink::start().await;
        let (mut plain, _) = Client::connect(&sink).await;
        let (mut login, _) = Client::connect(&sink).await;
        let (mut anonymous, _) = Client::connect(&sink).await;
        let (mut login_initial, _) = Client::connect(&sink).await;
        for client in [&mut plain, &mut login, &mut anonymous, &mut login_initial] {
            assert_code(&client.command("EHLO c.example").await, "250");
        }

        // An empty challenge: "334 " (the client trims the space).
        assert_eq!(plain.command("AUTH PLAIN").await, "334");
        assert_code(
            &plain.command(&STANDARD.encode("boss\0carol\0pw1")).await,
            "235",
        );
        assert_code(&plain.command("AUTH PLAIN").await, "503");

        assert_eq!(login.command("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
        assert_eq!(
            login.command(&STANDARD.encode("bob")).await,
            "334 UGFzc3dvcmQ6"
        );
        assert_code(&login.command(&STANDARD.encode("pw 2")).await, "235");

        let dave = STANDARD.encode("dave");
        assert_eq!(
            login_initial.command(&format!("AUTH LOGIN {dave}")).await,
            "334 UGFzc3dvcmQ6"
        );
        assert_code(&login_initial.command("=").await, "235");

        // Interleaved transactions.
        let clients = [&mut plain, &mut login, &mut anonymous, &mut login_initial];
        for (i, client) in clients.into_iter().enumerate() {
            assert_code(
                &client.command(&format!("MAIL FROM:<s{i}@x.example>")).await,
                "250",
            );
        }
        for (i, client) in [&mut anonymous, &mut login, &mut plain, &mut login_initial]
            .into_iter()
            .enumerate()
        {
            assert_code(
                &client.command(&format!("RCPT TO:<r{i}@y.example>")).await,
                "250",
            );
            assert_code(&client.command("DATA").await, "354");
        }
        assert_code(&login.command("Subject: login\r\n\r\nb\r\n.").await, "250");
        assert_code(
            &anonymous.command("Subject: none\r\n\r\nb\r\n.").await,
            "250",
        );
        assert_code(&plain.command("Subject: plain\r\n\r\nb\r\n.").await, "250");
        assert_code(
            &login_initial
                .command("Subject: initial\r\n\r\nb\r\n.")
                .await,
            "250",
        );

        let mails = sink.wait_for(4, PATIENCE).await;
        let by_subject = |s: &str| {
            mails
                .iter()
                .find(|m| m.header("Subject").as_deref() == Some(s))
                .unwrap_or_else(|| panic!("no mail {s}: {mails:#?}"))
                .clone()
        };
        let credentials = |u: &str, p: &str| Some((u.to_string(), p.to_string()));
        assert_eq!(by_subject("plain").auth, credentials("carol", "pw1"));
        assert_eq!(by_subject("plain").from, "s0@x.example");
        assert_eq!(by_subject("plain").to, ["r2@y.example"]);
        assert_eq!(by_subject("login").auth, credentials("bob", "pw 2"));
        assert_eq!(by_subject("initial").auth, credentials("dave", ""));
        assert_eq!(by_subject("none").auth, None);
        assert_eq!(by_subject("none").from, "s2@x.example");
    }

    #[tokio::test]
    async fn out_of_sequence_malformed_and_unknown_commands_are_answered_and_nothing_recorded() {
        let sink = SmtpSink::start().await;
        let (mut client, _) = Client::connect(&sink).await;
        assert_code(&client.command("HELO c.example").await, "250");
        assert_code(&client.command("STARTTLS").await, "502");
        assert_code(&client.command("VRFY postmaster").await, "502");
        assert_code(&client.command("AUTH CRAM-MD5").await, "504");
        assert_code(&client.command("AUTH PLAIN !!!").await, "501");
        assert_eq!(client.command("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
        assert_code(&client.command("*").await, "501");
        assert_code(&client.command("RCPT TO:<a@b.example>").await, "503");
        assert_code(&client.command("DATA").await, "503");
        assert_code(&client.command("MAIL TO:<a@b.example>").await, "501");
        assert_code(&client.command("MAIL FROM:<a@b.example>").await, "250");
        assert_code(&client.command("MAIL FROM:<a@b.example>").await, "503");
        assert_code(&client.command("DATA").await, "503");
        // A bare LF ends a command line too.
        client.send("NOOP\n").await;
        assert_code(&client.reply().await, "250");
        // A client that goes away in the middle of DATA leaves nothing behind.
        assert_code(&client.command("RCPT TO:<c@d.example>").await, "250");
        assert_code(&client.command("DATA").await, "354");
        client.send("Subject: cut\r\n\r\nhalf a mess").await;
        drop(client);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(sink.messages(), []);
        assert_eq!(sink.refused(), 0);
    }

    #[tokio::test]
    async fn a_refusing_sink_refuses_the_sender_or_the_recipients() {
        let sink = SmtpSink::start_refusing("550 5.7.1 relaying denied").await;
        let (mut client, _) = Client::connect(&sink).await;
        assert_code(&client.command("EHLO c.example").await, "250");
        assert_eq!(
            client.command("MAIL FROM:<a@b.example>").await,
            "550 5.7.1 relaying denied"
        );
        assert_code(&client.command("RCPT TO:<c@d.example>").await, "503");
        assert_eq!(sink.refused(), 1);

        let sink = SmtpSink::start_refusing_recipients("451 4.3.0 try later").await;
        let (mut client, _) = Client::connect(&sink).await;
        assert_code(&client.command("EHLO c.example").await, "250");
        assert_code(&client.command("MAIL FROM:<a@b.example>").await, "250");
        assert_eq!(
            client.command("RCPT TO:<c@d.example>").await,
            "451 4.3.0 try later"
        );
        assert_code(&client.command("DATA").await, "503");
        assert_eq!(sink.refused(), 1);
        assert_eq!(sink.messages(), []);
    }

    #[tokio::test]
    #[should_panic(expected = "4xx or 5xx")]
    async fn a_refusal_must_be_a_failure_reply() {
        SmtpSink::start_refusing("250 fine").await;
    }

    #[tokio::test]
    async fn wait_for_returns_what_it_has_after_the_timeout() {
        let sink = SmtpSink::start().await;
        let started = std::time::Instant::now();
        assert_eq!(sink.wait_for(1, Duration::from_millis(100)).await, []);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    fn mail(data: &str) -> ReceivedMail {
        ReceivedMail {
            from: String::new(),
            to: Vec::new(),
            data: data.to_string(),
            auth: None,
        }
    }

    #[test]
    fn headers_are_unfolded_and_encoded_words_decoded() {
        let m = mail(
            "Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9_du?=\r\n\t=?utf-8?B?IGpvdXI=?= final\r\n\
             To: =?iso-8859-1?q?Andr=E9?= <andre@x.example>\r\n\
             X-Long: one\r\n two\r\n\
             X-Unknown: =?koi8-r?b?9MXT1A==?= and =?broken\r\n\
             \r\n\
             Subject: not a header\r\n",
        );
        assert_eq!(m.header("subject").as_deref(), Some("Résumé du jour final"));
        assert_eq!(m.header("To").as_deref(), Some("André <andre@x.example>"));
        assert_eq!(m.header("x-long").as_deref(), Some("one two"));
        assert_eq!(
            m.header("X-Unknown").as_deref(),
            Some("=?koi8-r?b?9MXT1A==?= and =?broken")
        );
        assert_eq!(m.body(), "Subject: not a header\n");
    }

    #[test]
    fn bodies_are_decoded_by_their_transfer_encoding() {
        let qp = mail(
            "Content-Transfer-Encoding: Quoted-Printable\r\n\r\n\
             a=3Db =C3=A9t=C3=A9  \r\nsoft=\r\nly =\r\n\r\n=E2=82=AC",
        );
        assert_eq!(qp.body(), "a=b été\nsoftly \n€");
        let encoded = STANDARD.encode("Bonjour à tous,\r\nligne 2\r\n");
        let (head, tail) = encoded.split_at(10);
        let b64 = mail(&format!(
            "Content-Transfer-Encoding: base64\r\n\r\n{head}\r\n{tail}\r\n"
        ));
        assert_eq!(b64.body(), "Bonjour à tous,\nligne 2\n");
        let plain = mail("Subject: x\n\nno CR\r\nhere");
        assert_eq!(plain.body(), "no CR\nhere");
        assert_eq!(mail("Subject: no body").body(), "");
    }

    #[tokio::test]
    async fn lettre_delivers_accented_mail_with_credentials() {
        use lettre::message::header::ContentType;
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

        let sink = SmtpSink::start().await;
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host())
            .port(sink.port())
            .credentials(Credentials::new(
                "conpère".to_string(),
                "mot de passe ?=é".to_string(),
            ))
            .timeout(Some(PATIENCE))
            .build();
        let subject = "Échec de la synchronisation « Apogée » : exécution différée d'un très long nom d'établissement universitaire";
        // Mostly ASCII: lettre picks quoted-printable.
        let mostly_ascii = "Bonjour,\n\nLa synchronisation planifiée de 02:00 a échoué.\n.Une ligne qui commence par un point.\nUne très longue ligne, bien plus longue que les soixante-seize caractères qu'autorise quoted-printable.\n";
        // Mostly non-ASCII: lettre picks base64.
        let mostly_accented = "ÉÀÈÙÇ éàèùç ôîûâê ëïüÿ œæ «»€\n";
        let message = |body: &str, to: &str| {
            Message::builder()
                .from("Conpère <conpere@univ.example>".parse().unwrap())
                .to(to.parse().unwrap())
                .to("ops@univ.example".parse().unwrap())
                .subject(subject)
                .header(ContentType::TEXT_PLAIN)
                .body(body.to_string())
                .unwrap()
        };
        let (a, b) = tokio::join!(
            mailer.send(message(mostly_ascii, "Équipe DSI <dsi@univ.example>")),
            mailer.send(message(mostly_accented, "dsi@univ.example")),
        );
        a.expect("send the mostly ASCII mail");
        b.expect("send the mostly accented mail");

        let mails = sink.wait_for(2, PATIENCE).await;
        assert_eq!(mails.len(), 2, "{mails:#?}");
        let by_encoding = |encoding: &str| {
            mails
                .iter()
                .find(|m| m.header("Content-Transfer-Encoding").as_deref() == Some(encoding))
                .unwrap_or_else(|| panic!("no {encoding} mail: {mails:#?}"))
        };
        let (qp, b64) = (by_encoding("quoted-printable"), by_encoding("base64"));
        for m in [qp, b64] {
            assert_eq!(m.from, "conpere@univ.example");
            assert_eq!(m.to, ["dsi@univ.example", "ops@univ.example"]);
            assert_eq!(
                m.auth,
                Some(("conpère".to_string(), "mot de passe ?=é".to_string()))
            );
            assert_eq!(m.header("Subject").as_deref(), Some(subject));
            assert!(m.data.contains("\r\nSubject: =?utf-8?"), "{}", m.data);
            assert_eq!(
                m.header("From").as_deref(),
                Some("Conpère <conpere@univ.example>")
            );
        }
        assert_eq!(qp.body(), mostly_ascii);
        assert_eq!(b64.body(), mostly_accented);
        assert!(qp
            .header("To")
            .unwrap()
            .starts_with("Équipe DSI <dsi@univ.example>"));
    }

    #[tokio::test]
    async fn lettre_reports_a_refusal_as_a_permanent_error() {
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

        let sink = SmtpSink::start_refusing("550 5.7.1 relaying denied").await;
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host())
            .port(sink.port())
            .timeout(Some(PATIENCE))
            .build();
        let message = Message::builder()
            .from("conpere@univ.example".parse().unwrap())
            .to("ops@univ.example".parse().unwrap())
            .subject("x")
            .body("y".to_string())
            .unwrap();
        let error = mailer.send(message).await.expect_err("refused");
        assert!(error.is_permanent(), "{error}");
        assert!(error.to_string().contains("relaying denied"), "{error}");
        assert_eq!(sink.refused(), 1);
        assert_eq!(sink.messages(), []);
    }
}
