//! Every certificate the CA makes passes `openssl verify -x509_strict` for
//! its purpose, carries the extensions RFC 5280 expects, and reports the
//! serial and fingerprint openssl itself prints.

mod support;

use std::time::Duration;

use jiff::Timestamp;
use otpilot_api::common::KeyAlgorithm;
use otpilot_pki::{
    CLOCK_SKEW_ALLOWANCE, CaMaterial, certificate_info, generate_ca, issue_client_certificate,
    issue_server_certificate,
};
use secrecy::{ExposeSecret, SecretString};
use support::{Scratch, openssl, openssl_ok, pem_blocks, subject};

const ALGORITHMS: [KeyAlgorithm; 3] = [
    KeyAlgorithm::EcdsaP256,
    KeyAlgorithm::EcdsaP384,
    KeyAlgorithm::Ed25519,
];
const DAY: Duration = Duration::from_secs(86400);

/// `openssl x509 -noout -text` of `file`, for extension checks.
fn text(scratch: &Scratch, file: &str) -> String {
    openssl_ok(scratch.path(), &["x509", "-in", file, "-noout", "-text"])
}

/// The hex after "X509v3 <name>:" (and an optional "critical") in `text`.
fn key_identifier(text: &str, name: &str) -> String {
    let mut lines = text.lines().skip_while(|line| !line.contains(name));
    lines
        .next()
        .unwrap_or_else(|| panic!("no {name} in\n{text}"));
    let value = lines.next().expect("identifier line").trim();
    value.trim_start_matches("keyid:").to_owned()
}

fn verify(scratch: &Scratch, purpose: &str, leaf: &str) -> (bool, String) {
    openssl(
        scratch.path(),
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            "ca.pem",
            leaf,
        ],
    )
}

#[test]
fn generated_ca_is_a_strict_root_with_critical_constraints_and_matching_key_identifiers() {
    for algorithm in ALGORITHMS {
        let now = Timestamp::now();
        let ca = generate_ca(&subject("otpilot test root"), algorithm, 365 * DAY, now)
            .expect("generate CA");
        let scratch = Scratch::new();
        scratch.write("ca.pem", &ca.cert_pem);
        let (ok, output) = verify(&scratch, "any", "ca.pem");
        assert!(ok, "{algorithm:?}: {output}");

        let text = text(&scratch, "ca.pem");
        for expected in [
            "X509v3 Basic Constraints: critical",
            "CA:TRUE, pathlen:0",
            "X509v3 Key Usage: critical",
            "Certificate Sign, CRL Sign",
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
            "Subject: CN = otpilot test root, O = otpilot tests, OU = pki",
        ] {
            assert!(
                text.contains(expected),
                "{algorithm:?}: no {expected:?} in\n{text}"
            );
        }
        assert_eq!(
            key_identifier(&text, "Authority Key Identifier"),
            key_identifier(&text, "Subject Key Identifier"),
            "{algorithm:?}: a self-signed CA's AKI is its SKI"
        );

        // The key is PKCS#8 that openssl reads, and it is the certificate's.
        let key = scratch.write("ca.key", ca.key_pem.expose_secret());
        assert!(
            ca.key_pem
                .expose_secret()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        let key_public = openssl_ok(scratch.path(), &["pkey", "-in", "ca.key", "-pubout"]);
        let cert_public = openssl_ok(
            scratch.path(),
            &["x509", "-in", "ca.pem", "-noout", "-pubkey"],
        );
        assert_eq!(key_public, cert_public, "{algorithm:?}: {key:?}");
    }
}

#[test]
fn client_certificates_of_every_algorithm_pass_strict_verification_as_tls_clients() {
    for ca_algorithm in ALGORITHMS {
        let now = Timestamp::now();
        let ca = generate_ca(&subject("otpilot test root"), ca_algorithm, 365 * DAY, now)
            .expect("generate CA");
        for algorithm in ALGORITHMS {
            let issued =
                issue_client_certificate(&ca, &subject("payments-bot"), algorithm, 30 * DAY, now)
                    .expect("issue");
            let scratch = Scratch::new();
            scratch.write("ca.pem", &ca.cert_pem);
            let blocks = pem_blocks(&issued.chain_pem);
            assert_eq!(blocks.len(), 2, "the chain is the leaf then the CA");
            assert_eq!(pem_blocks(&ca.cert_pem)[0], blocks[1]);
            scratch.write("leaf.pem", &blocks[0]);
            let (ok, output) = verify(&scratch, "sslclient", "leaf.pem");
            assert!(ok, "{ca_algorithm:?} CA, {algorithm:?} leaf: {output}");

            let text = text(&scratch, "leaf.pem");
            for expected in [
                "X509v3 Basic Constraints: critical",
                "CA:FALSE",
                "X509v3 Key Usage: critical",
                "Digital Signature",
                "X509v3 Extended Key Usage",
                "TLS Web Client Authentication",
                "Subject: CN = payments-bot, O = otpilot tests, OU = pki",
            ] {
                assert!(text.contains(expected), "no {expected:?} in\n{text}");
            }
            assert!(!text.contains("Key Encipherment"), "{text}");
            assert!(!text.contains("TLS Web Server Authentication"), "{text}");
            let ca_text = self::text(
                &{
                    let scratch = Scratch::new();
                    scratch.write("ca.pem", &ca.cert_pem);
                    scratch
                },
                "ca.pem",
            );
            assert_eq!(
                key_identifier(&text, "Authority Key Identifier"),
                key_identifier(&ca_text, "Subject Key Identifier"),
                "the leaf's AKI is the CA's SKI"
            );
            assert_ne!(
                key_identifier(&text, "Subject Key Identifier"),
                key_identifier(&ca_text, "Subject Key Identifier"),
            );

            // A client certificate is not a serving certificate.
            let (ok, _) = verify(&scratch, "sslserver", "leaf.pem");
            assert!(!ok, "a client certificate must not verify as a TLS server");

            let key = scratch.write("leaf.key", issued.key_pem.expose_secret());
            let key_public = openssl_ok(scratch.path(), &["pkey", "-in", "leaf.key", "-pubout"]);
            let cert_public = openssl_ok(
                scratch.path(),
                &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
            );
            assert_eq!(key_public, cert_public, "{key:?}");
            assert!(ca.has_issued(&issued.chain_pem).expect("has_issued"));
        }
    }
}

#[test]
fn serving_certificates_pass_strict_verification_as_tls_servers_for_their_names() {
    let now = Timestamp::now();
    let ca = generate_ca(
        &subject("otpilot webhook CA"),
        KeyAlgorithm::EcdsaP256,
        365 * DAY,
        now,
    )
    .expect("generate CA");
    let names = [
        "otpilot-webhook.otpilot-system.svc".to_owned(),
        "otpilot-webhook.otpilot-system.svc.cluster.local".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    let issued = issue_server_certificate(&ca, &names, 30 * DAY, now).expect("issue");
    let scratch = Scratch::new();
    scratch.write("ca.pem", &ca.cert_pem);
    scratch.write("leaf.pem", &pem_blocks(&issued.chain_pem)[0]);
    let (ok, output) = verify(&scratch, "sslserver", "leaf.pem");
    assert!(ok, "{output}");
    let (ok, output) = openssl(
        scratch.path(),
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "otpilot-webhook.otpilot-system.svc",
            "-CAfile",
            "ca.pem",
            "leaf.pem",
        ],
    );
    assert!(ok, "{output}");
    let (ok, _) = verify(&scratch, "sslclient", "leaf.pem");
    assert!(!ok, "a serving certificate must not verify as a TLS client");
    let text = text(&scratch, "leaf.pem");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(
        text.contains("DNS:otpilot-webhook.otpilot-system.svc, DNS:otpilot-webhook.otpilot-system.svc.cluster.local, IP Address:127.0.0.1"),
        "{text}"
    );
    let info = certificate_info(&issued.chain_pem).expect("info");
    assert_eq!(info.subject_alt_names, names);
    assert!(!info.is_ca);
}

#[test]
fn serial_fingerprint_and_validity_match_what_openssl_prints() {
    let now: Timestamp = "2026-06-01T12:00:00.5Z".parse().expect("timestamp");
    let ca = generate_ca(
        &subject("otpilot test root"),
        KeyAlgorithm::EcdsaP256,
        365 * DAY,
        now,
    )
    .expect("generate CA");
    let issued = issue_client_certificate(
        &ca,
        &subject("payments-bot"),
        KeyAlgorithm::EcdsaP256,
        30 * DAY,
        now,
    )
    .expect("issue");
    for (pem, serial, fingerprint) in [
        (&ca.cert_pem, &ca.serial, &ca.fingerprint_sha256),
        (
            &issued.chain_pem,
            &issued.serial,
            &issued.fingerprint_sha256,
        ),
    ] {
        let scratch = Scratch::new();
        scratch.write("cert.pem", &pem_blocks(pem)[0]);
        let printed = openssl_ok(
            scratch.path(),
            &[
                "x509",
                "-in",
                "cert.pem",
                "-noout",
                "-serial",
                "-fingerprint",
                "-sha256",
            ],
        );
        assert!(
            printed.contains(&format!("serial={serial}\n")),
            "{serial} vs\n{printed}"
        );
        assert!(
            printed.contains(&format!("Fingerprint={fingerprint}\n")),
            "{fingerprint} vs\n{printed}"
        );
        // 128 random bits: 32 hex digits unless the top byte happened to be zero.
        assert!(serial.len() <= 32 && serial.len() % 2 == 0, "{serial}");
        let info = certificate_info(pem).expect("info");
        assert_eq!(&info.serial, serial);
        assert_eq!(&info.fingerprint_sha256, fingerprint);
    }
    let backdated = "2026-06-01T12:00:00Z"
        .parse::<Timestamp>()
        .expect("timestamp")
        .checked_sub(jiff::SignedDuration::try_from(CLOCK_SKEW_ALLOWANCE).expect("skew"))
        .expect("backdate");
    assert_eq!(ca.not_before, backdated);
    assert_eq!(issued.not_before, backdated);
    assert_eq!(
        issued.not_after,
        "2026-07-01T12:00:00Z".parse().expect("timestamp")
    );
    assert_eq!(
        ca.not_after,
        "2027-06-01T12:00:00Z".parse().expect("timestamp")
    );
}

#[test]
fn a_client_certificate_never_outlives_its_ca() {
    let now = Timestamp::now();
    let ca = generate_ca(&subject("short root"), KeyAlgorithm::EcdsaP256, DAY, now)
        .expect("generate CA");
    let issued = issue_client_certificate(
        &ca,
        &subject("payments-bot"),
        KeyAlgorithm::EcdsaP256,
        30 * DAY,
        now,
    )
    .expect("issue");
    assert_eq!(issued.not_after, ca.not_after);
}

/// A CA made by openssl the way people make them (SHA-1 key identifiers,
/// PrintableString names, RSA or EC keys): adopted, it issues certificates
/// that chain to it under strict verification.
#[test]
fn certificates_issued_by_an_imported_openssl_ca_pass_strict_verification() {
    for (name, key_args) in [
        ("rsa", &["-newkey", "rsa:2048"][..]),
        (
            "ec",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
        ),
    ] {
        let scratch = Scratch::new();
        let mut args = vec!["req", "-x509", "-nodes", "-days", "30"];
        args.extend_from_slice(key_args);
        args.extend_from_slice(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/C=DE/O=Imported Org/OU=Platform/CN=Imported Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl_ok(scratch.path(), &args);
        let ca = CaMaterial::from_pem(
            &scratch.read("ca.pem"),
            &SecretString::from(scratch.read("ca.key")),
            Timestamp::now(),
        )
        .unwrap_or_else(|error| panic!("{name}: adopt: {error}"));
        let issued = issue_client_certificate(
            &ca,
            &subject("payments-bot"),
            KeyAlgorithm::EcdsaP256,
            DAY,
            Timestamp::now(),
        )
        .expect("issue");
        scratch.write("leaf.pem", &pem_blocks(&issued.chain_pem)[0]);
        let (ok, output) = verify(&scratch, "sslclient", "leaf.pem");
        assert!(ok, "{name}: {output}");
        let server = issue_server_certificate(&ca, &["localhost".into()], DAY, Timestamp::now())
            .expect("issue server");
        scratch.write("server.pem", &pem_blocks(&server.chain_pem)[0]);
        let (ok, output) = verify(&scratch, "sslserver", "server.pem");
        assert!(ok, "{name}: {output}");
    }
}
