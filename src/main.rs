//! The `cairn` binary: parse the command line and hand over to `cairn::cli`.

// Links jemalloc, which replaces `malloc` process-wide (see Cargo.toml).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
use tikv_jemalloc_sys as _;

fn main() -> std::process::ExitCode {
    let cli = cairn::cli::parse();
    match cairn::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
