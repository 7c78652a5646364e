//! Where a storage call may wait: Cairn runs storage calls on blocking threads (its `blocking`
//! and heavy-work wrappers mark them with [`allowed`]), never on the async workers that also
//! answer client fetches and hold long polls. In debug builds the PostgreSQL engine logs a
//! call made on a thread of an async runtime outside such a mark, naming the call site.

use std::cell::Cell;

thread_local! {
    static ALLOWED: Cell<u32> = const { Cell::new(0) };
}

/// Leaves the mark on drop (also when the work unwinds).
struct Mark;

impl Drop for Mark {
    fn drop(&mut self) {
        ALLOWED.with(|a| a.set(a.get().saturating_sub(1)));
    }
}

/// Runs `f` on this thread, marked as one where storage calls may wait.
pub fn allowed<T>(f: impl FnOnce() -> T) -> T {
    ALLOWED.with(|a| a.set(a.get() + 1));
    let _mark = Mark;
    f()
}

/// True on a thread inside an async runtime that is not marked with [`allowed`]: an async
/// worker, where a call waiting on the database would stall every request it serves.
pub fn on_async_worker() -> bool {
    ALLOWED.with(|a| a.get() == 0) && tokio::runtime::Handle::try_current().is_ok()
}

/// Cairn's frames above the storage engine on this thread, innermost first (debug builds
/// carry the symbols; the frames inside `store` are left out).
pub fn call_site() -> String {
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    let mut frames = Vec::new();
    let mut lines = trace.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((_, symbol)) = line.trim_start().split_once(": ") else { continue };
        let location = lines.next_if(|l| l.trim_start().starts_with("at ")).map(|l| l.trim().to_string());
        if symbol.starts_with("cairn::") && !symbol.starts_with("cairn::store::") {
            frames.push(format!("{symbol} {}", location.unwrap_or_default()));
        }
        if frames.len() == 6 {
            break;
        }
    }
    frames.join(" < ")
}
