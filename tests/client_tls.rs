#![cfg(feature = "client")]
//! The client over `wss://`: a whole round trip through TLS to a hub whose
//! certificate a private authority signed (tests/fixtures/tls, made by its
//! make.sh), trusted through `ClientConfig::add_root_certificate`; and the
//! refusals when it is not trusted or cannot be read.

mod support;

use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::PrivateKeyDer, pki_types::pem::PemObject};
use wshub::client::{ConnectError, Disconnect};
use wshub::{Client, ClientConfig, Event, Hub, HubConfig};

const CA_PEM: &[u8] = include_bytes!("fixtures/tls/ca.pem");
const CA_DER: &[u8] = include_bytes!("fixtures/tls/ca.der");
const HUB_PEM: &[u8] = include_bytes!("fixtures/tls/hub.pem");
const HUB_KEY: &[u8] = include_bytes!("fixtures/tls/hub.key");

/// A hub that does the TLS handshake and the upgrade itself, then hands each
/// socket to `Hub::accept`. Returns the hub and its `wss://localhost` URL.
async fn tls_hub() -> (Hub, String) {
    let certificates = CertificateDer::pem_slice_iter(HUB_PEM).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(HUB_KEY).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let config = HubConfig::default();
    let websocket = config.websocket_config();
    let hub = Hub::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("wss://localhost:{}/", listener.local_addr().unwrap().port());
    let serving = hub.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, hub) = (acceptor.clone(), serving.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                if let Ok(ws) = tokio_tungstenite::accept_async_with_config(tls, Some(websocket)).await {
                    hub.accept(ws);
                }
            });
        }
    });
    (hub, url)
}

fn failed_because(result: Result<Client, ConnectError>) -> String {
    match result {
        Err(ConnectError::Failed(Disconnect::ConnectFailed(why))) => why,
        other => panic!("expected a failed connection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_trusting_the_hubs_authority_talks_with_it_over_wss_both_ways() {
    let (hub, url) = tls_hub().await;
    let mut from_client = hub.subscribe("hello:*").unwrap();
    for root in [CA_PEM, CA_DER] {
        let client = Client::connect(&url, ClientConfig::default().add_root_certificate(root)).await.unwrap();
        let mut replies = client.subscribe("reply:*").unwrap();
        client.connected().await.unwrap();
        support::wait_for(|| hub.spoke_count() == 1).await;

        client.dispatch(Event::new("hello", "1", json!("over tls"))).unwrap();
        let event = tokio::time::timeout(support::WAIT, from_client.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(event.payload(), &json!("over tls"));

        // The client sent `hub.subscribe` before `hello` on the same
        // connection: the hub holds the subscription by now.
        hub.dispatch(Event::new("reply", "1", json!("back over tls"))).unwrap();
        let reply = tokio::time::timeout(support::WAIT, replies.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(reply.payload(), &json!("back over tls"));

        client.close().await;
        support::wait_for(|| hub.spoke_count() == 0).await;
    }
}

#[tokio::test]
async fn without_the_authority_the_client_refuses_the_hubs_certificate() {
    let (hub, url) = tls_hub().await;
    let why = failed_because(Client::connect(&url, ClientConfig::default()).await);
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    assert_eq!(hub.spoke_count(), 0);
}

#[tokio::test]
async fn a_root_certificate_that_cannot_be_read_is_named_in_the_error() {
    let (_hub, url) = tls_hub().await;
    for garbage in [&b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"[..], b"not DER"] {
        let config = ClientConfig::default().add_root_certificate(CA_PEM).add_root_certificate(garbage);
        let why = failed_because(Client::connect(&url, config).await);
        assert!(why.contains("TLS setup: root certificate 1"), "{why}");
    }
}
