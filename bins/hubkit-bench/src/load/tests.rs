use super::*;

#[test]
fn loopback_addr_accepts_loopback_names() {
    let cases = [
        ("127.0.0.1", "127.0.0.1:8443"),
        ("localhost", "127.0.0.1:8443"),
        ("LocalHost", "127.0.0.1:8443"),
        ("::1", "[::1]:8443"),
        ("[::1]", "[::1]:8443"),
    ];
    for (host, expected) in cases {
        let addr = loopback_addr(host, 8443).map(|addr| addr.to_string());
        assert_eq!(addr.as_deref(), Some(expected), "{host}");
    }
}

#[test]
fn loopback_addr_rejects_other_hosts() {
    let hosts = [
        "127.0.0.2",
        "0.0.0.0",
        "10.0.0.1",
        "192.168.1.10",
        "169.254.169.254",
        "example.com",
        "localhost.example.com",
        "::",
        "",
    ];
    for host in hosts {
        assert_eq!(loopback_addr(host, 443), None, "{host}");
    }
}

#[test]
fn parse_target_accepts_loopback_https() {
    let (target, uri) = parse_target("https://[::1]:9443/webhook/urls/a?b=1").expect("valid URL");
    assert_eq!(target.addr.to_string(), "[::1]:9443");
    assert_eq!(uri.path(), "/webhook/urls/a");
}

#[test]
fn parse_target_defaults_to_port_443() {
    let (target, _) = parse_target("https://localhost/").expect("valid URL");
    assert_eq!(target.addr.port(), 443);
}

#[test]
fn parse_target_rejects_remote_host() {
    let err = parse_target("https://192.168.1.10:8443/").expect_err("remote host");
    assert!(err.to_string().contains("not allowed"), "{err}");
}

#[test]
fn parse_target_rejects_plain_http() {
    let err = parse_target("http://127.0.0.1:8080/").expect_err("plain http");
    assert!(err.to_string().contains("https"), "{err}");
}

#[test]
fn parse_target_rejects_userinfo_trick() {
    assert!(parse_target("https://127.0.0.1@example.com/").is_err());
}

#[test]
fn parse_header_trims_name_and_value() {
    let (name, value) = parse_header("X-Api-Key:  secret ").expect("valid header");
    assert_eq!(name.as_str(), "x-api-key");
    assert_eq!(value.to_str().expect("ASCII value"), "secret");
}

#[test]
fn parse_header_keeps_colons_in_value() {
    let (_, value) = parse_header("X-Time: 12:30:00").expect("valid header");
    assert_eq!(value.to_str().expect("ASCII value"), "12:30:00");
}

#[test]
fn parse_header_rejects_missing_colon() {
    assert!(parse_header("X-Api-Key secret").is_err());
}

#[test]
fn parse_header_rejects_bad_name() {
    assert!(parse_header("X Api: 1").is_err());
}

#[test]
fn basic_authorization_encodes_credentials() {
    let value = basic_authorization("user:pass").expect("valid credentials");
    assert_eq!(value.to_str().expect("ASCII value"), "Basic dXNlcjpwYXNz");
}

#[test]
fn basic_authorization_rejects_missing_colon() {
    assert!(basic_authorization("user").is_err());
}

#[test]
fn request_template_sets_host_and_json_type() {
    let (_, uri) = parse_target("https://127.0.0.1:8443/webhook/urls/x?a=1").expect("valid URL");
    let body = Bytes::from_static(DEFAULT_BODY.as_bytes());
    let template =
        request_template(&uri, Method::POST, HeaderMap::new(), body).expect("valid template");
    let request = template.build();
    assert_eq!(request.uri().to_string(), "/webhook/urls/x?a=1");
    assert_eq!(request.headers()[HOST], "127.0.0.1:8443");
    assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
}

#[test]
fn request_template_keeps_given_content_type() {
    let (_, uri) = parse_target("https://127.0.0.1:8443/").expect("valid URL");
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    let body = Bytes::from_static(b"a,b\n1,2\n");
    let template = request_template(&uri, Method::POST, headers, body).expect("valid template");
    let request = template.build();
    assert_eq!(request.headers()[CONTENT_TYPE], "text/csv");
}

#[test]
fn request_template_without_body_has_no_content_type() {
    let (_, uri) = parse_target("https://127.0.0.1:8443/healthz").expect("valid URL");
    let template = request_template(&uri, Method::GET, HeaderMap::new(), Bytes::new())
        .expect("valid template");
    assert!(!template.build().headers().contains_key(CONTENT_TYPE));
}

#[test]
fn append_adds_windows_and_latencies() {
    let mut first = LoadReport::empty(Duration::from_secs(2)).expect("report");
    first.requests = 100;
    first.latency.record(400).expect("latency in bounds");
    first.first_error = Some("first".to_owned());
    let mut later = LoadReport::empty(Duration::from_secs(3)).expect("report");
    later.requests = 400;
    later.non_2xx = 1;
    later.first_non_2xx = Some(StatusCode::SERVICE_UNAVAILABLE);
    later.latency.record(900).expect("latency in bounds");
    later.first_error = Some("later".to_owned());

    first.append(later).expect("histograms add");

    assert_eq!(first.requests, 500);
    assert_eq!(first.duration, Duration::from_secs(5));
    assert!((first.requests_per_sec() - 100.0).abs() < f64::EPSILON);
    assert_eq!(first.latency.len(), 2);
    assert_eq!(first.non_2xx, 1);
    assert_eq!(first.first_non_2xx, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(first.first_error.as_deref(), Some("first"));
}
