//! A scripted HTTP/1.1 server on 127.0.0.1 for executor tests: it answers
//! each request with the next canned answer, records what it received,
//! and can drop a connection after reading a request (an answer lost after
//! sending). Plain HTTP, so engines talking to it need
//! `HttpSettings::allow_plain_http`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Status, extra header lines (`Name: value`), JSON body.
    Json(u16, Vec<String>, serde_json::Value),
    /// Read the request, then close the connection without answering.
    Drop,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Answer::Json(status, Vec::new(), body)
    }
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub head: String,
    pub body: String,
}

/// The server: its base URL, and what it has received.
#[derive(Clone)]
pub struct Scripted {
    pub base_url: String,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Received>>>,
    handler: Option<Handler>,
}

/// Computes the answer to a request (instead of a script).
pub type Handler = Arc<dyn Fn(&Received) -> Answer + Send + Sync>;

impl Scripted {
    /// Starts a server that gives `answers` in order; after them, 500.
    pub async fn start(answers: Vec<Answer>) -> Self {
        Self::spawn(answers, None).await
    }

    /// Starts a server that answers every request with `handler`.
    pub async fn start_with(handler: Handler) -> Self {
        Self::spawn(Vec::new(), Some(handler)).await
    }

    async fn spawn(answers: Vec<Answer>, handler: Option<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Scripted {
            base_url: format!("http://{addr}"),
            answers: Arc::new(Mutex::new(answers.into())),
            received: Arc::new(Mutex::new(Vec::new())),
            handler,
        };
        let handle = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let handle = handle.clone();
                tokio::spawn(async move { handle.serve(sock).await });
            }
        });
        server
    }

    /// Adds answers at the end of the script.
    pub fn push(&self, answer: Answer) {
        self.answers.lock().expect("lock").push_back(answer);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    async fn serve(&self, mut sock: tokio::net::TcpStream) {
        loop {
            let Some(request) = read_request(&mut sock).await else {
                return;
            };
            let answer = match &self.handler {
                Some(handler) => handler(&request),
                None => self
                    .answers
                    .lock()
                    .expect("lock")
                    .pop_front()
                    .unwrap_or_else(|| {
                        Answer::json(500, serde_json::json!({"error": "script ended"}))
                    }),
            };
            self.received.lock().expect("lock").push(request);
            match answer {
                Answer::Drop => return,
                Answer::Json(status, headers, body) => {
                    let body = body.to_string();
                    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
                    let response = format!(
                        "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n{extra}\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                let mut first = head.split_whitespace();
                let method = first.next().unwrap_or_default().to_owned();
                let path = first.next().unwrap_or_default().to_owned();
                return Some(Received {
                    method,
                    path,
                    head,
                    body,
                });
            }
        }
    }
}
