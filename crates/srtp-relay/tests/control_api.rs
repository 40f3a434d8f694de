//! The HTTPS control API over real TLS with generated certificates: roles allowed and denied,
//! refused certificates (wrong CA, expired, revoked, none), calls created, read, updated and
//! deleted with media flowing, port exhaustion, draining, reload, and configuration errors.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use srtp_relay::control::server::{ApiAuth, Server};
use support::{config, flows, session, socket, Pki};

const OFFER_80: &str =
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1";
const OFFER_GCM: &str =
    "a=crypto:7 AEAD_AES_128_GCM inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3OA==";

async fn start(pki: &Pki, ports: (u16, u16)) -> Server {
    Server::start(&config(ports), &pki.auth()).await.unwrap()
}

/// The body of a successful GET with the certificate saved as `name`.
async fn get(pki: &Pki, server: &Server, name: &str, path: &str) -> String {
    let r = pki
        .client(server, Some(name))
        .request("GET", path, None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{name} GET {path}");
    r.body
}

fn transcrypt_body(a: std::net::SocketAddr, b: std::net::SocketAddr) -> String {
    json!({
        "mode": {"type": "transcrypt"},
        "legs": [
            {"remote": a.to_string(), "rtcp_mux": true, "srtp": {"crypto": [OFFER_80]}},
            {"remote": b.to_string(), "srtp": {"crypto": ["a=crypto:1 NOT_A_SUITE inline:x", OFFER_GCM]}},
        ]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_allowed_exactly_its_actions() {
    let pki = Pki::new("roles");
    let server = start(&pki, (45000, 45099)).await;
    let create = transcrypt_body(
        "127.0.0.1:9".parse().unwrap(),
        "127.0.0.1:11".parse().unwrap(),
    );
    // (method, path, body, roles allowed)
    let cases: [(&str, &str, Option<&str>, &[&str]); 7] = [
        (
            "GET",
            "/healthz",
            None,
            &["admin", "operator", "auditor", "metrics"],
        ),
        ("GET", "/metrics", None, &["admin", "metrics"]),
        ("GET", "/v1/stats", None, &["admin", "auditor"]),
        ("GET", "/v1/calls", None, &["admin", "operator", "auditor"]),
        ("POST", "/v1/calls", Some(&create), &["admin", "operator"]),
        (
            "PATCH",
            "/v1/calls/424242",
            Some(r#"{"leg":0,"direction":"sendonly"}"#),
            &["admin", "operator"],
        ),
        ("DELETE", "/v1/calls/424242", None, &["admin", "operator"]),
    ];
    for role in ["admin", "operator", "auditor", "metrics", "unmapped"] {
        let client = pki.client(&server, Some(role));
        for (method, path, body, allowed) in cases {
            let r = client.request(method, path, body).await.unwrap();
            if allowed.contains(&role) {
                assert_ne!(r.status, 403, "{role} {method} {path}");
                assert!(r.status < 500, "{role} {method} {path}: {}", r.status);
            } else {
                assert_eq!(r.status, 403, "{role} {method} {path} must be denied");
                assert!(r.body.is_empty(), "a denial carries no detail");
            }
        }
    }
    let text = get(&pki, &server, "metrics", "/metrics").await;
    assert!(text.contains("srtp_relay_api_denied_total "), "{text}");
    assert!(
        text.contains("srtp_relay_drops_total{reason=\"auth\"}"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_certificates_get_no_response() {
    let pki = Pki::new("refused");
    let server = start(&pki, (45100, 45199)).await;
    for name in [Some("wrong-ca"), Some("expired"), Some("revoked"), None] {
        let r = pki
            .client(&server, name)
            .request("GET", "/healthz", None)
            .await;
        assert!(r.is_err(), "{name:?} must be refused at TLS, got {r:?}");
    }
    // The same requests with a good certificate pass.
    assert!(get(&pki, &server, "admin", "/healthz").await.contains("ok"));
    // The server counts a refusal just after sending its alert: the count may trail the
    // client by a moment.
    let mut text = String::new();
    for _ in 0..50 {
        text = get(&pki, &server, "admin", "/metrics").await;
        if text.contains("srtp_relay_api_tls_failures_total 4") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("srtp_relay_api_tls_failures_total 4"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_lifecycle_with_media_and_no_keys_in_reads() {
    let pki = Pki::new("calls");
    let server = start(&pki, (45200, 45299)).await;
    let operator = pki.client(&server, Some("operator"));
    let (a, b) = (socket(), socket());
    let r = operator
        .request(
            "POST",
            "/v1/calls",
            Some(&transcrypt_body(
                a.local_addr().unwrap(),
                b.local_addr().unwrap(),
            )),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let created: Value = serde_json::from_str(&r.body).unwrap();
    let id = created["id"].as_u64().unwrap();
    let leg = |i: usize, k: &str| created["legs"][i][k].as_str().unwrap().to_string();
    // The relay answers each endpoint with its own key: same tag and suite; MKI only where
    // the endpoint's line had one.
    assert!(leg(0, "crypto").starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(leg(0, "crypto").ends_with("|2^31|1:1"));
    assert!(leg(1, "crypto").starts_with("a=crypto:7 AEAD_AES_128_GCM inline:"));
    assert!(!leg(1, "crypto").contains('|'));
    assert_ne!(leg(0, "crypto"), OFFER_80);

    // a → relay → b and back, each side decrypting with the relay's lines.
    let (mut a_tx, mut a_rx) = (session(OFFER_80), session(&leg(0, "crypto")));
    let (mut b_tx, mut b_rx) = (session(OFFER_GCM), session(&leg(1, "crypto")));
    let to_relay_a = leg(0, "rtp").parse().unwrap();
    let to_relay_b = leg(1, "rtp").parse().unwrap();
    flows(
        &a,
        Some(&mut a_tx),
        to_relay_a,
        &b,
        Some(&mut b_rx),
        0x1111,
        10,
    );
    flows(
        &b,
        Some(&mut b_tx),
        to_relay_b,
        &a,
        Some(&mut a_rx),
        0x2222,
        10,
    );

    let auditor = pki.client(&server, Some("auditor"));
    for path in [
        format!("/v1/calls/{id}"),
        "/v1/calls".into(),
        "/v1/stats".into(),
    ] {
        let r = auditor.request("GET", &path, None).await.unwrap();
        assert_eq!(r.status, 200);
        assert!(
            !r.body.contains("inline") && !r.body.contains("crypto"),
            "{}",
            r.body
        );
    }
    let got: Value = serde_json::from_str(
        &auditor
            .request("GET", &format!("/v1/calls/{id}"), None)
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(got["mode"], "transcrypt");
    assert_eq!(got["legs"][0]["counters"]["packets_in"], 10);
    assert_eq!(got["legs"][0]["local"]["rtp"], leg(0, "rtp"));

    // Hold: b no longer receives a's media.
    let r = operator
        .request(
            "PATCH",
            &format!("/v1/calls/{id}"),
            Some(r#"{"leg":1,"direction":"sendonly"}"#),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    a.send_to(
        &support::protect(&mut a_tx, &support::rtp(100, 0x1111)),
        to_relay_a,
    )
    .unwrap();
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(support::recv(&b).is_none(), "held leg must not receive");
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Resume and re-key what the relay sends to b.
    let r = operator
        .request(
            "PATCH",
            &format!("/v1/calls/{id}"),
            Some(r#"{"leg":1,"direction":"sendrecv","rekey_relay":true}"#),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let rekeyed: Value = serde_json::from_str(&r.body).unwrap();
    let mut b_rx = session(rekeyed["crypto"].as_str().unwrap());
    b.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let plain = support::rtp(101, 0x1111);
    a.send_to(&support::protect(&mut a_tx, &plain), to_relay_a)
        .unwrap();
    let mut got = support::recv(&b).unwrap();
    assert_eq!(b_rx.unprotect_rtp(&mut got).unwrap(), &plain[..]);

    // Bad requests name the problem without echoing values.
    let r = operator
        .request("PATCH", &format!("/v1/calls/{id}"), Some(r#"{"leg":0,"crypto":"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2VjcmV0c2VjcmV0"}"#))
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert!(!r.body.contains("c2VjcmV0"), "{}", r.body);
    // New keys in another suite than the leg's (same key length) are refused, not taken.
    let r = operator
        .request(
            "PATCH",
            &format!("/v1/calls/{id}"),
            Some(
                r#"{"leg":0,"crypto":"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1"}"#,
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("AES_CM_128_HMAC_SHA1_80"), "{}", r.body);
    assert!(!r.body.contains("WVNfX19z"), "{}", r.body);
    let r = operator
        .request(
            "POST",
            "/v1/calls",
            Some(r#"{"mode":{"type":"transcrypt"},"legz":[]}"#),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains("legz"), "{}", r.body);

    let r = operator
        .request("DELETE", &format!("/v1/calls/{id}"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = operator
        .request("GET", &format!("/v1/calls/{id}"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    server.stop().await;
}

/// A pass-through call given the endpoints' keys verifies tags unless told not to: a forged
/// packet is dropped and counted, and never moves the media (no RTP Bleed by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_pass_through_verifies_by_default() {
    let pki = Pki::new("verify");
    let server = start(&pki, (45500, 45599)).await;
    let operator = pki.client(&server, Some("operator"));
    let (a, b) = (socket(), socket());
    let body = json!({
        "mode": {"type": "pass-through"},
        "legs": [
            {"srtp": {"crypto": [OFFER_80]}},
            {"remote": b.local_addr().unwrap().to_string(), "srtp": {"crypto": [OFFER_80]}},
        ]
    })
    .to_string();
    let r = operator
        .request("POST", "/v1/calls", Some(&body))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let created: Value = serde_json::from_str(&r.body).unwrap();
    let id = created["id"].as_u64().unwrap();
    let to_relay: std::net::SocketAddr =
        created["legs"][0]["rtp"].as_str().unwrap().parse().unwrap();
    // A forgery: a well-formed header and a tag that is not the key's.
    let mut forged = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0x0f, 0x0f, 0x0f, 0x0f];
    forged.extend([0x55; 30]);
    let evil = socket();
    evil.send_to(&forged, to_relay).unwrap();
    // The genuine sender is relayed untouched (pass-through keeps the end-to-end key).
    let mut tx = session(OFFER_80);
    let mut rx = session(OFFER_80);
    flows(&a, Some(&mut tx), to_relay, &b, Some(&mut rx), 0x3333, 3);
    let got: Value = serde_json::from_str(
        &operator
            .request("GET", &format!("/v1/calls/{id}"), None)
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(got["legs"][0]["counters"]["drops"]["auth"], 1, "{got}");
    assert_eq!(got["mode"], "pass-through-verified", "{got}");
    assert_eq!(got["legs"][1]["counters"]["packets_out"], 3, "{got}");
    assert_eq!(
        got["legs"][0]["remote_rtp"],
        a.local_addr().unwrap().to_string(),
        "latched on the genuine sender: {got}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_exhaustion_and_draining_are_clean_errors() {
    let pki = Pki::new("exhaust");
    // One RTP/RTCP pair per leg: room for exactly one call. Below the kernel's ephemeral
    // ports (32768 on), so that no socket bound to port 0 elsewhere takes one of the four.
    let server = start(&pki, (31300, 31303)).await;
    let op = pki.client(&server, Some("operator"));
    let body = r#"{"mode":{"type":"pass-through"},"legs":[{},{}]}"#;
    assert_eq!(
        op.request("POST", "/v1/calls", Some(body))
            .await
            .unwrap()
            .status,
        201
    );
    let r = op.request("POST", "/v1/calls", Some(body)).await.unwrap();
    assert_eq!(r.status, 503);
    assert!(r.body.contains("no free media port"), "{}", r.body);
    server.control().start_draining();
    let r = op.request("POST", "/v1/calls", Some(body)).await.unwrap();
    assert_eq!(r.status, 503);
    assert!(r.body.contains("draining"), "{}", r.body);
    // Running calls are still served while draining.
    assert_eq!(
        op.request("GET", "/v1/calls/1", None).await.unwrap().status,
        200
    );
    let health = op.request("GET", "/healthz", None).await.unwrap();
    assert!(health.body.contains("\"draining\":true"));
    let cut = server.drain(Duration::from_millis(300)).await;
    assert_eq!(cut, 1, "the running call is cut at the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_roles() {
    let pki = Pki::new("reload");
    let server = start(&pki, (45400, 45499)).await;
    let auditor = pki.client(&server, Some("auditor"));
    assert_eq!(
        auditor
            .request("GET", "/v1/stats", None)
            .await
            .unwrap()
            .status,
        200
    );
    let mut roles = Pki::roles();
    roles.remove("client-auditor");
    server
        .reload(&ApiAuth {
            files: Some(pki.files.clone()),
            roles,
        })
        .unwrap();
    assert_eq!(
        auditor
            .request("GET", "/v1/stats", None)
            .await
            .unwrap()
            .status,
        403
    );
    server.stop().await;
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_srtp-relay"))
}

#[test]
fn configuration_errors_name_the_key() {
    let dir = support::TempDir::new("config");
    let cases = [
        ("[media]\nport_min = \"low\"\n", "port_min"),
        ("[media]\nports = 3\n", "ports"),
        (
            "[media]\nport_min = 40000\nport_max = 30000\n",
            "media.port_min",
        ),
        (
            "[api]\ndanger_plaintext = true\nlisten = \"0.0.0.0:80\"\n",
            "api.listen",
        ),
        ("[api.roles]\nproxy = \"superuser\"\n", "superuser"),
        ("[log]\nlevel = \"loud\"\n", "log.level"),
    ];
    for (text, key) in cases {
        let path = dir.write("relay.toml", text);
        let out = bin()
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{text}: {err}");
    }
    let out = bin().args(["serve", "--ports", "40000"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MIN-MAX"));
}

#[test]
fn keygen_prints_a_usable_line() {
    let out = bin()
        .args([
            "keygen",
            "--profile",
            "AES_CM_128_HMAC_SHA1_32",
            "--mki",
            "1",
            "--lifetime-pow2",
            "31",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let attr: srtp_core::sdes::CryptoAttribute = line.trim().parse().unwrap();
    assert!(attr.policy().is_ok());
    assert!(line.trim().ends_with("|2^31|1:1"), "{line}");
    assert!(!bin()
        .args(["keygen", "--profile", "ROT13"])
        .output()
        .unwrap()
        .status
        .success());
}
