//! Issued certificates work where they are used: a rustls server that
//! demands client certificates (WebPkiClientVerifier, as vendors' TLS
//! stacks do) accepts ours over real TCP on 127.0.0.1, and refuses a
//! certificate from another CA or one not meant for clients.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use otpilot_api::common::KeyAlgorithm;
use otpilot_pki::{
    CaMaterial, IssuedCertificate, generate_ca, issue_client_certificate, issue_server_certificate,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use secrecy::ExposeSecret;
use support::subject;

const DAY: Duration = Duration::from_secs(86400);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn chain(issued: &IssuedCertificate) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("chain PEM")
}

fn key(issued: &IssuedCertificate) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(issued.key_pem.expose_secret().as_bytes()).expect("key PEM")
}

fn roots(ca: &CaMaterial) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.ca_der().expect("CA DER")))
        .expect("add root");
    Arc::new(roots)
}

/// One mTLS exchange on 127.0.0.1: a server with `server` that trusts
/// client certificates from `client_ca`, a client presenting `client` that
/// trusts `server_ca`. Returns the client certificate the server saw.
fn exchange(
    server_ca: &CaMaterial,
    server: &IssuedCertificate,
    client_ca: &CaMaterial,
    client: &IssuedCertificate,
) -> Result<CertificateDer<'static>, String> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(client_ca), provider())
        .build()
        .expect("client verifier");
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(server), key(server))
        .expect("server config");
    let client_config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots(server_ca))
        .with_client_auth_cert(chain(client), key(client))
        .expect("client config");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let server_thread = std::thread::spawn(move || -> Result<CertificateDer<'static>, String> {
        let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let connection =
            rustls::ServerConnection::new(Arc::new(server_config)).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        let mut hello = [0u8; 5];
        stream
            .read_exact(&mut hello)
            .map_err(|e| format!("server: {e}"))?;
        let seen = stream
            .conn
            .peer_certificates()
            .and_then(|certificates| certificates.first().cloned())
            .ok_or("server: no client certificate")?;
        stream.write_all(b"hello").map_err(|e| e.to_string())?;
        stream.flush().map_err(|e| e.to_string())?;
        Ok(seen.into_owned())
    });

    let tcp = TcpStream::connect(address).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let name = ServerName::try_from("localhost").expect("server name");
    let connection =
        rustls::ClientConnection::new(Arc::new(client_config), name).expect("client connection");
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let client_result = stream
        .write_all(b"hello")
        .and_then(|()| stream.flush())
        .and_then(|()| {
            let mut answer = [0u8; 5];
            stream.read_exact(&mut answer)
        })
        .map_err(|e| format!("client: {e}"));
    drop(stream);
    let server_result = server_thread.join().expect("server thread");
    match (client_result, server_result) {
        (Ok(()), Ok(seen)) => Ok(seen),
        (client, server) => Err(format!("{client:?} / {server:?}")),
    }
}

fn serving(ca: &CaMaterial) -> IssuedCertificate {
    issue_server_certificate(ca, &["localhost".into()], DAY, Timestamp::now())
        .expect("serving certificate")
}

#[test]
fn issued_client_certificates_of_every_algorithm_complete_an_mtls_handshake() {
    let now = Timestamp::now();
    let server_ca = generate_ca(
        &subject("server root"),
        KeyAlgorithm::EcdsaP256,
        30 * DAY,
        now,
    )
    .expect("server CA");
    let server = serving(&server_ca);
    for ca_algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let client_ca =
            generate_ca(&subject("client root"), ca_algorithm, 30 * DAY, now).expect("client CA");
        for algorithm in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
        ] {
            let client =
                issue_client_certificate(&client_ca, &subject("payments-bot"), algorithm, DAY, now)
                    .expect("client certificate");
            let seen = exchange(&server_ca, &server, &client_ca, &client)
                .unwrap_or_else(|error| panic!("{ca_algorithm:?} CA, {algorithm:?} key: {error}"));
            assert_eq!(seen, chain(&client)[0]);
        }
    }
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let now = Timestamp::now();
    let ca = generate_ca(&subject("root"), KeyAlgorithm::EcdsaP256, 30 * DAY, now).expect("CA");
    let stranger =
        generate_ca(&subject("stranger"), KeyAlgorithm::EcdsaP256, 30 * DAY, now).expect("CA");
    let client = issue_client_certificate(
        &stranger,
        &subject("payments-bot"),
        KeyAlgorithm::EcdsaP256,
        DAY,
        now,
    )
    .expect("client certificate");
    let error = exchange(&ca, &serving(&ca), &ca, &client).expect_err("must be refused");
    // The server's verifier found no path to its CA and said so.
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(error.contains("fatal alert: UnknownCA"), "{error}");
}

#[test]
fn a_serving_certificate_is_refused_as_a_client_certificate() {
    let now = Timestamp::now();
    let ca = generate_ca(&subject("root"), KeyAlgorithm::EcdsaP256, 30 * DAY, now).expect("CA");
    let not_for_clients = serving(&ca);
    let error = exchange(&ca, &serving(&ca), &ca, &not_for_clients).expect_err("must be refused");
    // The server's verifier checked the extended key usage.
    assert!(
        error.contains("does not allow extended key usage for client authentication"),
        "{error}"
    );
    assert!(
        error.contains("fatal alert: UnsupportedCertificate"),
        "{error}"
    );
}
