//! The command line: check-config, hash-password, camera-urls and --help.

use std::io::Write;
use std::process::{Command, Stdio};

fn hubkitd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hubkitd"))
}

fn example_config() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/hubkit.toml")
}

/// Writes `text` to `file`, runs `hubkitd check-config` on it, checks that it fails and
/// returns its stderr.
fn check_config_fails(file: &std::path::Path, text: &str) -> String {
    std::fs::write(file, text).expect("write");
    let output = hubkitd()
        .arg("check-config")
        .arg(file)
        .output()
        .expect("run");
    assert!(!output.status.success(), "check-config accepted {text:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn check_config_accepts_example() {
    let output = hubkitd()
        .arg("check-config")
        .arg(example_config())
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(stdout.contains("1 action, 1 trigger)"), "{stdout}");
}

#[test]
fn check_config_names_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = check_config_fails(
        &dir.path().join("bad.toml"),
        "[[webhooks]]\nname = \"x\"\ncustom_path = \"short\"\npayload_format = \"json\"\n",
    );
    assert!(stderr.contains("bad.toml:3"), "{stderr}");
    assert!(stderr.contains("custom_path"), "{stderr}");
}

#[test]
fn check_config_reads_tls_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let stderr = check_config_fails(
        &dir.path().join("files.toml"),
        &format!("[server.tls]\nmode = \"files\"\ncert = {missing:?}\nkey = {missing:?}\n"),
    );
    assert!(stderr.contains("invalid TLS files"), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

#[test]
fn hash_password_prints_argon2id() {
    let mut child = hubkitd()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a long password\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("$argon2id$"), "{stdout}");
    assert!(!stdout.contains("a long password"));
}

#[test]
fn hash_password_rejects_short_password() {
    let mut child = hubkitd()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"short\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(!output.status.success());
}

#[test]
fn help_describes_flags() {
    let output = hubkitd().arg("--help").output().expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--config",
        "--listen",
        "--data-dir",
        "check-config",
        "hash-password",
    ] {
        assert!(
            stdout.contains(flag),
            "{flag} missing from --help:\n{stdout}"
        );
    }
}

#[test]
fn missing_config_flag_is_an_error() {
    let output = hubkitd().output().expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--config"), "{stderr}");
}

#[test]
fn check_config_reads_broker_tls_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing-ca.pem");
    let text = format!(
        "[[areas]]\nname = \"P\"\n  [[areas.layers]]\n  name = \"S\"\n  kind = \"mqtt\"\n\
         [[brokers]]\nname = \"secure\"\nurl = \"mqtts://broker.local\"\n\
         [brokers.tls]\nca_file = {:?}\n",
        missing.display().to_string()
    );
    let stderr = check_config_fails(&dir.path().join("hubkit.toml"), &text);
    assert!(
        stderr.contains("broker \"secure\": invalid TLS files"),
        "{stderr}"
    );
    assert!(stderr.contains("missing-ca.pem"), "{stderr}");
}

#[test]
fn camera_urls_prints_one_url_per_camera() {
    let output = hubkitd()
        .arg("camera-urls")
        .arg(example_config())
        .output()
        .expect("run");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(
        lines[0],
        "camera \"lobby-camera\" (aa:bb:cc:dd:ee:ff, general): \
         https://127.0.0.1:8443/ipro/aa-bb-cc-dd-ee-ff/general"
    );
    assert!(
        lines[3].ends_with("/ipro/aa-bb-cc-dd-ee-03/face-recognition"),
        "{stdout}"
    );

    let output = hubkitd()
        .args(["camera-urls", "--base-url", "https://hub.example:9443/"])
        .arg(example_config())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(": https://hub.example:9443/ipro/aa-bb-cc-dd-ee-01/ai-motion\n"),
        "{stdout}"
    );

    for bad in ["ftp://hub.example", "http://", "hub.example:8443"] {
        let output = hubkitd()
            .args(["camera-urls", "--base-url", bad])
            .arg(example_config())
            .output()
            .expect("run");
        assert!(!output.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("must start with https:// or http://"),
            "{stderr}"
        );
    }
    let output = hubkitd()
        .args(["camera-urls", "--base-url", "HTTPS://hub.example"])
        .arg(example_config())
        .output()
        .expect("run");
    assert!(output.status.success());
}

#[test]
fn camera_urls_name_the_placeholder_for_a_wildcard_listen_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hubkit.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"0.0.0.0:8443\"\n[[cameras]]\nname = \"a\"\n\
         mac = \"aabbccddeeff\"\nformat = \"general\"\n",
    )
    .expect("write");
    let output = hubkitd()
        .arg("camera-urls")
        .arg(&file)
        .output()
        .expect("run");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("https://HUB-ADDRESS:8443/ipro/aa-bb-cc-dd-ee-ff/general"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--base-url"), "{stderr}");

    let text = "[[cameras]]\nname = \"a\"\nmac = \"aabbccddeef\"\nformat = \"general\"\n";
    std::fs::write(&file, text).expect("write");
    let output = hubkitd()
        .arg("camera-urls")
        .arg(&file)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cameras[0].mac"), "{stderr}");
}
