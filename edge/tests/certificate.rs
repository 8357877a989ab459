//! The certificate an edge reports is the one it serves: two edges with
//! self-signed certificates in one process each expose their own PEM at
//! `certificate().cert_path` (tests and `livecdn up` read it to trust the
//! edge over HTTPS and HTTP/3).

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::edge_config_tls;
use livecdn_edge::EdgeServer;
use livecdn_shared::tls;

fn spki_of_file(path: &std::path::Path) -> String {
    let pem = std::fs::read_to_string(path).unwrap();
    let der = tls::first_certificate_der(&pem).unwrap();
    tls::spki_sha256_base64(&der).unwrap()
}

/// Several self-signed edges in one process each write and report their
/// own certificate file.
#[tokio::test]
async fn each_self_signed_edge_reports_its_own_certificate_file() {
    let one = EdgeServer::bind(edge_config_tls(&[])).await.unwrap();
    let two = EdgeServer::bind(edge_config_tls(&[])).await.unwrap();
    let (c1, c2) = (one.certificate().unwrap(), two.certificate().unwrap());
    assert!(c1.self_signed && c2.self_signed);
    assert_ne!(c1.spki_sha256, c2.spki_sha256, "two fresh keys");
    assert_eq!(spki_of_file(&c2.cert_path), c2.spki_sha256);
    assert_eq!(
        spki_of_file(&c1.cert_path),
        c1.spki_sha256,
        "edge one's cert_path ({}) holds another edge's certificate",
        c1.cert_path.display()
    );
}

#[tokio::test]
async fn a_self_signed_edge_reports_the_certificate_it_wrote() {
    let edge = EdgeServer::bind(edge_config_tls(&[])).await.unwrap();
    let cert = edge.certificate().unwrap();
    assert!(cert.self_signed);
    assert_eq!(spki_of_file(&cert.cert_path), cert.spki_sha256);
}
