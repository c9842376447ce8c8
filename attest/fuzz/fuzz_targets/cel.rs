#![no_main]
use keyward_attest::cel::{DEFAULT_WORKLOAD_PCR, WorkloadLog};
use keyward_attest::digest::{HashAlg, PcrValues};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(log) = WorkloadLog::parse(data, DEFAULT_WORKLOAD_PCR) {
        let mut quoted = PcrValues::new();
        let _ = quoted.insert(
            HashAlg::Sha256,
            u32::from(DEFAULT_WORKLOAD_PCR),
            vec![0; 32],
        );
        if let Ok(verified) = log.verify(&quoted) {
            let _ = verified.launch_record_for_key(&[0; 32]);
        }
    }
});
