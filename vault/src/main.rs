//! `keyward`: the vault server and the command line for operators,
//! platform teams, release engineers and hosts. The command tree mirrors
//! the API (`keyward <noun> <verb>`).
//!
//! The binary's one `unsafe` is [`purge_freed_memory_at_once`]: an option
//! of its allocator. Everything else, here and in the library, is safe code.

mod cli;

/// mimalloc instead of glibc malloc: on the release path glibc's
/// `malloc`/`free`/`malloc_consolidate` took about a tenth of the server's
/// CPU, and mimalloc raised both release rates by 10–16 % in the same runs
/// (docs/benchmarks.md, "Release path").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v3: the 16th entry of
/// `mi_option_e`; libmimalloc-sys exports no constant for it). The test
/// below checks the index against the option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Its default in mimalloc v3: purge freed memory after 1000 ms.
const MI_PURGE_DELAY_DEFAULT_MS: std::ffi::c_long = 1000;

/// Returns freed memory to the OS at once instead of after mimalloc's 1 s
/// delay: a restart with 1M leases frees most of what sled's recovery
/// allocated, and with the delay the vault stayed ~80 MiB above that
/// (docs/benchmarks.md, "Restart"). Skipped, keeping the default, if the
/// option at the index does not hold the purge delay's default value.
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    // SAFETY: both functions take and return plain integers and touch only
    // mimalloc's option table; this runs first in `main`, before any other
    // thread exists.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_PURGE_DELAY_DEFAULT_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

use clap::Parser;

fn main() {
    purge_freed_memory_at_once();
    // Before any thread exists: libtss2 reads TSS2_LOG once.
    keyward_hardware::silence_libtss2_logs_at_startup();
    let exit = cli::run(cli::Cli::parse());
    std::process::exit(exit.code());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the hard-coded option index across mimalloc upgrades: the
    /// option there must have the purge delay's default, and setting it
    /// must take.
    #[test]
    #[allow(unsafe_code)]
    fn purge_delay_option_is_the_one_set() {
        // SAFETY: as in `purge_freed_memory_at_once`; the option table is
        // process-global, and no other test in this binary touches it.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(before, MI_PURGE_DELAY_DEFAULT_MS);
        purge_freed_memory_at_once();
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, 0);
    }
}
