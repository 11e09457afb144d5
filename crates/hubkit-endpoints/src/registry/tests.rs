use super::{Registry, Webhook};
use crate::test_support::cheap_hash;
use crate::{Auth, AuthCheck, CustomPath, EndpointError, PasswordSpec, PayloadFormat};

fn webhook(name: &str, path: &str) -> Webhook {
    let path = CustomPath::parse(path).expect("test path is valid");
    Webhook::new(name, path, PayloadFormat::Json, Auth::None)
}

#[test]
fn webhook_new_derives_short_id() {
    let webhook = webhook("sensor-data", "sensor-data");
    assert_eq!(webhook.short_id.as_str(), "2bd3d393b13a");
    assert!(webhook.enabled);
    assert_eq!(webhook.max_body_bytes, None);
}

#[test]
fn registry_looks_up_exact_path() {
    let registry = Registry::new(vec![
        webhook("sensor-data", "sensor-data"),
        webhook("room", "rooms/room-1"),
    ])
    .expect("webhooks are valid");
    let found = registry.lookup("rooms/room-1").expect("path is registered");
    assert_eq!(found.webhook().name, "room");
    for path in [
        "rooms/room-1/",
        "/rooms/room-1",
        "Rooms/room-1",
        "rooms//room-1",
        "",
    ] {
        assert!(registry.lookup(path).is_none(), "{path:?}");
    }
}

#[test]
fn registry_keeps_configuration_order() {
    let registry = Registry::new(vec![
        webhook("zeta", "zeta-path"),
        webhook("alpha", "alpha-path"),
    ])
    .expect("webhooks are valid");
    let names: Vec<&str> = registry
        .iter()
        .map(|endpoint| endpoint.webhook().name.as_str())
        .collect();
    assert_eq!(names, ["zeta", "alpha"]);
    assert_eq!(registry.len(), 2);
    assert!(!registry.is_empty());
}

#[test]
fn registry_empty_is_valid() {
    let registry = Registry::new(Vec::new()).expect("no webhooks is valid");
    assert!(registry.is_empty());
}

#[test]
fn registry_rejects_duplicate_name() {
    let result = Registry::new(vec![
        webhook("sensor-data", "sensor-data"),
        webhook("sensor-data", "other-path"),
    ]);
    assert_eq!(
        result.map(|_| ()),
        Err(EndpointError::DuplicateName {
            name: "sensor-data".to_owned()
        })
    );
}

#[test]
fn registry_rejects_duplicate_path() {
    let result = Registry::new(vec![
        webhook("first", "sensor-data"),
        webhook("second", "sensor-data"),
    ]);
    let err = result.expect_err("paths repeat");
    assert_eq!(
        err.to_string(),
        "custom path \"sensor-data\" is used by webhooks \"first\" and \"second\"; \
         each custom path must be unique"
    );
}

#[test]
fn registry_rejects_duplicate_short_id() {
    let mut second = webhook("second", "second-path");
    second.short_id = webhook("first", "first-path").short_id;
    let result = Registry::new(vec![webhook("first", "first-path"), second]);
    assert!(
        matches!(result, Err(EndpointError::DuplicateShortId { .. })),
        "{result:?}"
    );
}

#[test]
fn registry_rejects_blank_name() {
    for name in ["", "  "] {
        let result = Registry::new(vec![webhook(name, "sensor-data")]);
        assert!(
            matches!(result, Err(EndpointError::EmptyName)),
            "{name:?} gave {result:?}"
        );
    }
}

#[test]
fn registry_rejects_invalid_auth() {
    let mut invalid = webhook("sensor-data", "sensor-data");
    invalid.auth = Auth::Basic {
        username: "username".to_owned(),
        password: PasswordSpec::Clear("short".to_owned()),
    };
    let err = Registry::new(vec![invalid]).expect_err("password is too short");
    assert_eq!(
        err.to_string(),
        "webhook \"sensor-data\": password is shorter than 8 characters; use at least 8"
    );
}

#[test]
fn endpoint_debug_hides_password() {
    let mut secured = webhook("sensor-data", "sensor-data");
    secured.auth = Auth::Basic {
        username: "username".to_owned(),
        password: PasswordSpec::Phc(cheap_hash("secret-password")),
    };
    let hash = cheap_hash("secret-password");
    let registry = Registry::new(vec![secured]).expect("webhook is valid");
    let debug = format!("{registry:?}");
    assert!(!debug.contains(&hash), "{debug}");
    assert!(debug.contains("Phc(<redacted>)"), "{debug}");
}

#[test]
fn endpoint_authorize_uses_webhook_auth() {
    let mut secured = webhook("sensor-data", "sensor-data");
    secured.auth = Auth::Basic {
        username: "username".to_owned(),
        password: PasswordSpec::Clear("password".to_owned()),
    };
    let registry = Registry::new(vec![secured]).expect("webhook is valid");
    let endpoint = registry.lookup("sensor-data").expect("path is registered");
    assert!(matches!(endpoint.authorize(None), AuthCheck::Denied(_)));
}
