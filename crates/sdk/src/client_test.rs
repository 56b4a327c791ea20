//! Client tests without a cluster.

use super::*;

#[tokio::test]
async fn local_only_client_hands_out_shared_breakers() {
    let client = Client::local_only().expect("client");
    assert_eq!(client.mode(), Mode::LocalOnly);
    let a = client.breaker("payments/ml-fraud").expect("breaker");
    let b = client.breaker("payments/ml-fraud").expect("same breaker");
    assert!(Arc::ptr_eq(&a.shared, &b.shared));
    assert!(matches!(client.breaker("Payments"), Err(Error::Invalid(_))));
    assert_eq!(client.tier("payments"), Tier::Full);
    assert!(
        client.feature_enabled("payments", "ml_fraud"),
        "unknown features are on"
    );
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    assert!(matches!(Client::local_only(), Err(Error::NoRuntime)));
}

#[tokio::test]
async fn options_are_validated() {
    let err = Client::builder()
        .report_interval(Duration::ZERO)
        .build()
        .expect_err("invalid");
    assert!(matches!(
        err,
        Error::InvalidOption {
            option: "report_interval",
            ..
        }
    ));
    let err = Client::builder()
        .endpoints(["127.0.0.1:7070"])
        .build()
        .expect_err("no instance");
    assert!(matches!(err, Error::MissingInstanceId));
    let err = Client::builder()
        .stale_after(Duration::from_secs(40))
        .build()
        .expect_err("stale after fallback");
    assert!(matches!(
        err,
        Error::InvalidOption {
            option: "stale_after",
            ..
        }
    ));
}
