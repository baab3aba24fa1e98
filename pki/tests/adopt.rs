//! Adopting an imported CA refuses what would fail later — a leaf, a key
//! that is not the certificate's, an expired CA, a CA strict verifiers
//! reject, a key format ring cannot read — with messages that say what to
//! do and carry no key material.

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use otpilot_api::common::KeyAlgorithm;
use otpilot_pki::{CaMaterial, PkiError, generate_ca, issue_client_certificate};
use secrecy::{ExposeSecret, SecretString};
use support::{Scratch, openssl_ok, pem_blocks, subject};

const DAY: Duration = Duration::from_secs(86400);

// A CA made by `openssl req -x509` with exactly the extensions in `extensions`
// (one `key = value` per line) and `subject`, and its PKCS#8 key.
fn openssl_ca(extensions: &str, subject: &str, extra: &[&str]) -> (String, String) {
    let scratch = Scratch::new();
    scratch.write(
        "openssl.cnf",
        &format!(
            "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\n[ext]\n{extensions}\n"
        ),
    );
    let mut args = vec![
        "req",
        "-x509",
        "-nodes",
        "-config",
        "openssl.cnf",
        "-days",
        "30",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        subject,
    ];
    args.extend_from_slice(extra);
    openssl_ok(scratch.path(), &args);
    (scratch.read("ca.pem"), scratch.read("ca.key"))
}

const GOOD_EXTENSIONS: &str = "basicConstraints = critical,CA:TRUE\n\
     keyUsage = critical,keyCertSign,cRLSign\n\
     subjectKeyIdentifier = hash";

// `openssl pkey` options turning a PKCS#8 key into another form.
fn convert_key(key_pem: &str, args: &[&str]) -> String {
    let scratch = Scratch::new();
    scratch.write("in.key", key_pem);
    let mut all = vec!["pkey", "-in", "in.key", "-out", "out.key"];
    all.extend_from_slice(args);
    openssl_ok(scratch.path(), &all);
    scratch.read("out.key")
}

fn secret_lines(key_pem: &str) -> Vec<String> {
    key_pem
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() > 8)
        .map(str::to_owned)
        .collect()
}

#[test]
fn adopting_refuses_unusable_cas_and_keys_with_clear_messages_and_no_key_material() {
    let now = Timestamp::now();
    let generated =
        generate_ca(&subject("root"), KeyAlgorithm::EcdsaP256, 365 * DAY, now).expect("generate");
    let other =
        generate_ca(&subject("other"), KeyAlgorithm::EcdsaP256, 365 * DAY, now).expect("generate");
    let ca_key = generated.key_pem.expose_secret().to_owned();
    let leaf = issue_client_certificate(
        &generated,
        &subject("leaf"),
        KeyAlgorithm::EcdsaP256,
        DAY,
        now,
    )
    .expect("issue");
    let long_ago = "2020-01-01T00:00:00Z"
        .parse::<Timestamp>()
        .expect("timestamp");
    let expired =
        generate_ca(&subject("old"), KeyAlgorithm::EcdsaP256, DAY, long_ago).expect("generate");
    let future = generate_ca(
        &subject("future"),
        KeyAlgorithm::EcdsaP256,
        365 * DAY,
        now.checked_add(SignedDuration::from_hours(240))
            .expect("future"),
    )
    .expect("generate");
    let (openssl_cert, openssl_key) = openssl_ca(GOOD_EXTENSIONS, "/CN=Imported", &[]);
    let not_critical = openssl_ca(
        "basicConstraints = CA:TRUE\nkeyUsage = critical,keyCertSign\nsubjectKeyIdentifier = hash",
        "/CN=Imported",
        &[],
    );
    let no_key_usage = openssl_ca(
        "basicConstraints = critical,CA:TRUE\nsubjectKeyIdentifier = hash",
        "/CN=Imported",
        &[],
    );
    let no_cert_sign = openssl_ca(
        "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,digitalSignature\nsubjectKeyIdentifier = hash",
        "/CN=Imported",
        &[],
    );
    let no_ski = openssl_ca(
        "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign\nsubjectKeyIdentifier = none",
        "/CN=Imported",
        &[],
    );
    let server_only = openssl_ca(
        &format!("{GOOD_EXTENSIONS}\nextendedKeyUsage = serverAuth"),
        "/CN=Imported",
        &[],
    );
    let repeated = openssl_ca(GOOD_EXTENSIONS, "/CN=Imported/OU=one/OU=two", &[]);
    let multi_valued = openssl_ca(GOOD_EXTENSIONS, "/CN=Imported+O=Org", &["-multivalue-rdn"]);
    let sec1 = convert_key(&openssl_key, &["-traditional"]);
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
    let encrypted = convert_key(&openssl_key, &["-aes256", "-passout", "pass:secret"]);
    assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let garbage_key =
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n";

    let leaf_cert = pem_blocks(&leaf.chain_pem)[0].clone();
    let leaf_key = leaf.key_pem.expose_secret().to_owned();
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("no certificate", "", &ca_key, "no PEM CERTIFICATE block"),
        (
            "no key",
            &generated.cert_pem,
            "",
            "failed to read the private key: no PEM block",
        ),
        (
            "a leaf, not a CA",
            &leaf_cert,
            &leaf_key,
            "the certificate is not a CA",
        ),
        (
            "another CA's key",
            &generated.cert_pem,
            other.key_pem.expose_secret(),
            "the private key does not belong to the certificate",
        ),
        (
            "an expired CA",
            &expired.cert_pem,
            expired.key_pem.expose_secret(),
            "it expired at 2020-01-02T00:00:00Z",
        ),
        (
            "a CA not valid yet",
            &future.cert_pem,
            future.key_pem.expose_secret(),
            "it is not valid before",
        ),
        (
            "basicConstraints not critical",
            &not_critical.0,
            &not_critical.1,
            "basicConstraints extension is not marked critical",
        ),
        (
            "no keyUsage",
            &no_key_usage.0,
            &no_key_usage.1,
            "it has no keyUsage extension",
        ),
        (
            "keyUsage without keyCertSign",
            &no_cert_sign.0,
            &no_cert_sign.1,
            "keyUsage does not include keyCertSign",
        ),
        (
            "no subjectKeyIdentifier",
            &no_ski.0,
            &no_ski.1,
            "no subjectKeyIdentifier extension",
        ),
        (
            "a CA restricted to serverAuth",
            &server_only.0,
            &server_only.1,
            "extendedKeyUsage does not allow clientAuth",
        ),
        (
            "a subject repeating an attribute",
            &repeated.0,
            &repeated.1,
            "subject name cannot be copied exactly",
        ),
        (
            "a multi-valued subject",
            &multi_valued.0,
            &multi_valued.1,
            "subject name cannot be copied exactly",
        ),
        (
            "a SEC1 EC key",
            &openssl_cert,
            &sec1,
            "\"EC PRIVATE KEY\" keys are not supported; convert the key to PKCS#8",
        ),
        (
            "an encrypted key",
            &openssl_cert,
            &encrypted,
            "the key is encrypted",
        ),
        (
            "a certificate where the key belongs",
            &openssl_cert,
            &openssl_cert,
            "found a \"CERTIFICATE\" PEM block where a PRIVATE KEY",
        ),
        (
            "a key that is not a key",
            &openssl_cert,
            garbage_key,
            "not a PKCS#8 ECDSA P-256/P-384, Ed25519 or RSA key",
        ),
    ];
    let every_key = [
        &ca_key,
        &leaf_key,
        &expired.key_pem.expose_secret().to_owned(),
        &future.key_pem.expose_secret().to_owned(),
        &other.key_pem.expose_secret().to_owned(),
        &openssl_key,
        &not_critical.1,
        &no_key_usage.1,
        &no_cert_sign.1,
        &no_ski.1,
        &server_only.1,
        &repeated.1,
        &multi_valued.1,
        &sec1,
        &encrypted,
    ];
    for (name, cert, key, expected) in cases {
        let error = CaMaterial::from_pem(cert, &SecretString::from(key), now).expect_err(name);
        let shown = format!("{error}\n{error:?}");
        assert!(shown.contains(expected), "{name}: {shown}");
        assert!(!shown.contains("PRIVATE KEY-----"), "{name}: {shown}");
        for key in every_key {
            for line in secret_lines(key) {
                assert!(!shown.contains(&line), "{name}: key material in {shown}");
            }
        }
    }

    // The well-formed ones are adopted.
    for (name, cert, key) in [
        ("generated", &generated.cert_pem, &ca_key),
        ("openssl", &openssl_cert, &openssl_key),
    ] {
        let adopted = CaMaterial::from_pem(cert, &SecretString::from(key.as_str()), now)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(&adopted.cert_pem, cert);
    }
    // Pasted PEM with CRLFs and text around it is published clean.
    let pasted = format!(
        "issued by the security team\r\n{}\r\n",
        generated.cert_pem.replace('\n', "\r\n")
    );
    let adopted = CaMaterial::from_pem(&pasted, &generated.key_pem, now).expect("adopt");
    assert_eq!(adopted.cert_pem, generated.cert_pem);
    assert_eq!(adopted.fingerprint_sha256, generated.fingerprint_sha256);
    assert_eq!(adopted.not_after, generated.not_after);
    assert_eq!(adopted.serial, generated.serial);
}

#[test]
fn an_imported_intermediate_ca_hands_its_chain_to_what_it_issues() {
    let now = Timestamp::now();
    let (root_pem, root_key) = openssl_ca(GOOD_EXTENSIONS, "/CN=Imported Root", &[]);
    let scratch = Scratch::new();
    scratch.write("root.pem", &root_pem);
    scratch.write("root.key", &root_key);
    scratch.write(
        "ext.cnf",
        "[ext]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    );
    openssl_ok(
        scratch.path(),
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "int.key",
            "-out",
            "int.csr",
            "-subj",
            "/CN=Imported Intermediate",
        ],
    );
    openssl_ok(
        scratch.path(),
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "ext",
            "-out",
            "int.pem",
        ],
    );
    let chain = format!("{}{}", scratch.read("int.pem"), root_pem);
    let intermediate =
        CaMaterial::from_pem(&chain, &SecretString::from(scratch.read("int.key")), now)
            .expect("adopt the intermediate");
    let issued = issue_client_certificate(
        &intermediate,
        &subject("leaf"),
        KeyAlgorithm::EcdsaP256,
        DAY,
        now,
    )
    .expect("issue");
    let blocks = pem_blocks(&issued.chain_pem);
    assert_eq!(blocks.len(), 3, "leaf, intermediate, root");
    assert_eq!(blocks[1], pem_blocks(&scratch.read("int.pem"))[0]);
    assert_eq!(blocks[2], pem_blocks(&root_pem)[0]);
    scratch.write("leaf.pem", &blocks[0]);
    openssl_ok(
        scratch.path(),
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslclient",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "int.pem",
            "leaf.pem",
        ],
    );
    assert!(
        intermediate
            .has_issued(&issued.chain_pem)
            .expect("has_issued")
    );
    let root =
        CaMaterial::from_pem(&root_pem, &SecretString::from(root_key), now).expect("adopt root");
    assert!(!root.has_issued(&issued.chain_pem).expect("has_issued"));
}

#[test]
fn every_type_s_debug_output_hides_the_private_keys() {
    let now = Timestamp::now();
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let ca = generate_ca(&subject("root"), algorithm, 365 * DAY, now).expect("generate");
        let issued =
            issue_client_certificate(&ca, &subject("leaf"), algorithm, DAY, now).expect("issue");
        let info = otpilot_pki::certificate_info(&issued.chain_pem).expect("info");
        let shown = format!("{ca:?}\n{issued:?}\n{info:?}\n{ca:#?}\n{issued:#?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        for key in [ca.key_pem.expose_secret(), issued.key_pem.expose_secret()] {
            for line in secret_lines(key) {
                assert!(!shown.contains(&line), "key material in {shown}");
            }
        }
        assert!(shown.contains(&ca.fingerprint_sha256));
        assert!(shown.contains("[REDACTED]"));
    }
    let error: PkiError =
        CaMaterial::from_pem("", &SecretString::from("x"), now).expect_err("refused");
    assert!(!format!("{error:?}").contains("PRIVATE"));
}
