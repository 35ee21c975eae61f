//! A spoke written in Python with the `websockets` package from PyPI
//! (pinned in tests/python/requirements.txt, installed into
//! tests/python/.venv by scripts/setup.d/30-python.sh) against the hub.

#[path = "support/foreign.rs"]
mod foreign;
mod support;

use tokio::process::Command;

#[tokio::test]
async fn a_python_websockets_spoke_sends_text_and_binary_subscribes_and_receives() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut python = Command::new(format!("{root}/tests/python/.venv/bin/python"));
    python.arg(format!("{root}/tests/python/spoke.py"));
    foreign::check_spoke_script(python, "run `bash scripts/setup.d/30-python.sh` (or scripts/test.sh) first").await;
}
