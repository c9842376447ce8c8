//! `ClientBuilder::from_launch_env` with a launch environment that cannot
//! be used. The environment is set on a child process (this test binary
//! run again), since a test may not change its own environment safely.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Command;

use keyward_client::{Client, ClientError};

const CHILD: &str = "KEYWARD_LAUNCH_ENV_TEST_CHILD";
const TEST: &str = "a_workload_pcr_that_is_not_an_index_is_refused";

#[test]
fn a_workload_pcr_that_is_not_an_index_is_refused() {
    if std::env::var_os(CHILD).is_some() {
        let err = Client::builder().from_launch_env().build().unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::InvalidConfig {
                    what: "KEYWARD_WORKLOAD_PCR is not a PCR index"
                }
            ),
            "{err:?}"
        );
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--test-threads=1"])
        .env(CHILD, "1")
        .env("KEYWARD_WORKLOAD_PCR", "twenty-three")
        .env_remove("KEYWARD_INSTANCE_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
