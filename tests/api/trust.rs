//! Which FHIR servers receive the EHR's access token: hostile fhirServer
//! values are refused with a 412 and no connection is made (a listener on
//! loopback counts every connection it accepts).

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use crate::auth::{claims, issuers_file, key_server, sign, ISSUER};
use crate::fhir_server::ACCESS_TOKEN;
use crate::helpers::*;

const SERVICE: &str = "/cds-services/leg-cramps-patient-view";

/// A loopback listener that counts accepted connections and drops them.
pub struct Counting {
    pub port: u16,
    pub accepted: Arc<AtomicUsize>,
}

pub fn counting_listener(address: &str) -> Option<Counting> {
    let listener = TcpListener::bind(address).ok()?;
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    Some(Counting { port, accepted })
}

/// A call whose prefetch lacks every required key, so all must be fetched.
fn fetching_call(server: &str) -> Value {
    let mut request = patient_view_request();
    request["prefetch"] = json!({});
    request["fhirServer"] = json!(server);
    request["fhirAuthorization"] = json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "cramp-cds"});
    request
}

async fn assert_not_trusted(response: reqwest::Response, server: &str) {
    let issues = assert_outcome(response, 412).await;
    let text = serde_json::to_string(&issues).unwrap();
    assert!(text.contains("fhirServer not trusted"), "{server}: {text}");
    assert!(
        pointers(&issues).contains(&"/prefetch/patient".to_owned()),
        "{server}: the key is named"
    );
    assert!(!text.contains(ACCESS_TOKEN), "{server}: the token leaked");
}

#[tokio::test]
async fn hostile_fhir_servers_are_refused_with_no_connection_made() {
    let v4 = counting_listener("127.0.0.1:0").unwrap();
    let p = v4.port;
    let open = spawn_app().await;
    let mut hostile = vec![
        format!("http://127.0.0.1:{p}/fhir"),
        format!("http://2130706433:{p}/fhir"),
        format!("http://0x7f.0.0.1:{p}/fhir"),
        format!("http://127.1:{p}/fhir"),
        format!("http://[::ffff:127.0.0.1]:{p}/fhir"),
        format!("http://localhost:{p}/fhir"),
        format!("http://ehr.example.org@127.0.0.1:{p}/fhir"),
    ];
    let v6 = counting_listener("[::1]:0");
    if let Some(v6) = &v6 {
        hostile.push(format!("http://[::1]:{}/fhir", v6.port));
    }
    for server in &hostile {
        assert_not_trusted(
            open.post_json(SERVICE, &fetching_call(server)).await,
            server,
        )
        .await;
    }

    // Allow-listed by name: look-alikes of it are refused all the same.
    let allowed = format!("http://localhost:{p}/fhir");
    let listed = spawn_app_with({
        let allowed = allowed.clone();
        move |s| s.fhir.allowed_servers = vec![allowed]
    })
    .await;
    for server in [
        format!("http://localhost:{p}/fhirx"),
        format!("http://localhost:{p}@127.0.0.1:{p}/fhir"),
        format!("http://127.0.0.1:{p}/fhir"),
        format!("http://localhost:{}/fhir", p.wrapping_add(1)),
        format!("http://localhost.localdomain.example:{p}/fhir"),
        format!("https://localhost:{p}/fhir"),
    ] {
        assert_not_trusted(
            listed.post_json(SERVICE, &fetching_call(&server)).await,
            &server,
        )
        .await;
    }
    assert_eq!(
        v4.accepted.load(Ordering::SeqCst),
        0,
        "no connection to a refused server"
    );
    if let Some(v6) = &v6 {
        assert_eq!(
            v6.accepted.load(Ordering::SeqCst),
            0,
            "no connection over IPv6 either"
        );
    }

    // The control: the allow-listed name is contacted (and then drops the
    // connection), so the counter does count.
    let response = listed
        .post_json(SERVICE, &fetching_call(&format!("{allowed}/R4")))
        .await;
    assert_eq!(response.status(), 412);
    assert!(
        v4.accepted.load(Ordering::SeqCst) > 0
            || v6.is_some_and(|v6| v6.accepted.load(Ordering::SeqCst) > 0)
    );
}

#[tokio::test]
async fn an_issuer_fetches_only_from_its_bound_servers() {
    let Some(bound) = counting_listener("127.0.0.1:0") else {
        panic!("no loopback listener")
    };
    let other = counting_listener("127.0.0.1:0").unwrap();
    let bound_url = format!("http://127.0.0.1:{}/fhir", bound.port);
    let other_url = format!("http://127.0.0.1:{}/fhir", other.port);
    let keys = key_server().await;
    let path = issuers_file(
        json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url, "fhirServers": [bound_url]}]),
    );
    let app = spawn_app_with({
        let other_url = other_url.clone();
        move |s| {
            s.issuers = Some(path);
            // On the global list, but not bound to this issuer: refused.
            s.fhir.allowed_servers = vec![other_url];
        }
    })
    .await;
    let audience = format!("{}{SERVICE}", app.address);
    let post = |server: String| {
        let token = sign(Algorithm::ES384, "test-es384", &claims(&audience));
        let request = app
            .client
            .post(&audience)
            .bearer_auth(token)
            .json(&fetching_call(&server));
        async move { request.send().await.unwrap() }
    };
    assert_not_trusted(post(other_url.clone()).await, &other_url).await;
    assert_eq!(other.accepted.load(Ordering::SeqCst), 0);
    assert_eq!(
        post(bound_url.clone()).await.status(),
        412,
        "the bound stand-in drops the connection"
    );
    assert!(
        bound.accepted.load(Ordering::SeqCst) > 0,
        "the bound server is contacted"
    );
}

/// One issuer serving two hospitals: each tenant's token goes to its own
/// FHIR server only, and each tenant can call.
#[tokio::test]
async fn each_tenant_of_one_issuer_fetches_only_from_its_own_servers() {
    let a = counting_listener("127.0.0.1:0").unwrap();
    let b = counting_listener("127.0.0.1:0").unwrap();
    let a_url = format!("http://127.0.0.1:{}/fhir", a.port);
    let b_url = format!("http://127.0.0.1:{}/fhir", b.port);
    let keys = key_server().await;
    let path = issuers_file(json!([
        {"iss": ISSUER, "jwksUrl": keys.jwks_url, "tenant": "hospital-a", "fhirServers": [a_url]},
        {"iss": ISSUER, "jwksUrl": keys.jwks_url, "tenant": "hospital-b", "fhirServers": [b_url]}
    ]));
    let app = spawn_app_with(move |s| s.issuers = Some(path)).await;
    let audience = format!("{}{SERVICE}", app.address);
    let post = |tenant: &str, server: &str| {
        let mut claims = claims(&audience);
        claims["tenant"] = json!(tenant);
        let token = sign(Algorithm::ES384, "test-es384", &claims);
        let request = app
            .client
            .post(&audience)
            .bearer_auth(token)
            .json(&fetching_call(server));
        async move { request.send().await.unwrap() }
    };
    assert_not_trusted(post("hospital-a", &b_url).await, &b_url).await;
    assert_not_trusted(post("hospital-b", &a_url).await, &a_url).await;
    assert_eq!(a.accepted.load(Ordering::SeqCst), 0);
    assert_eq!(b.accepted.load(Ordering::SeqCst), 0);
    // Its own server: contacted (the stand-in drops the connection: 412).
    assert_eq!(post("hospital-b", &b_url).await.status(), 412);
    assert!(b.accepted.load(Ordering::SeqCst) > 0);
    assert_eq!(a.accepted.load(Ordering::SeqCst), 0);
    assert_eq!(post("hospital-a", &a_url).await.status(), 412);
    assert!(a.accepted.load(Ordering::SeqCst) > 0);
    // A tenant the file does not name is not let in.
    assert_eq!(post("hospital-c", &a_url).await.status(), 401);
}

#[tokio::test]
async fn authentication_without_trusted_fhir_servers_does_not_start() {
    let keys = key_server().await;
    let path = issuers_file(json!([{"iss": ISSUER, "jwksUrl": keys.jwks_url}]));
    let mut settings = cramp_cds::config::ServeSettings::defaults();
    settings.port = 0;
    settings.database_url = temporary_sqlite();
    settings.issuers = Some(path);
    let error = cramp_cds::startup::Application::build(settings)
        .await
        .err()
        .expect("start-up is refused")
        .to_string();
    assert!(error.contains("--fhir-server-allow any"), "{error}");
}
