#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(log) = keyward_attest::eventlog::BootLog::parse(data) {
        let replayed = log.replay();
        if let Ok(verified) = log.verify(&replayed) {
            let _ = verified.facts();
        }
    }
});
