//! Work spread over a few scoped threads: loading thousands of token files,
//! saving them (fsyncs issued side by side share the file system's journal
//! commits), a rotation's local steps.

/// `f` on every item, on up to `threads` threads that each take a
/// contiguous share; the results in the items' order. One thread (or one
/// item) runs here, with no thread started. A panic in `f` is raised again
/// here.
pub fn map_on_threads<T: Send, R: Send>(items: Vec<T>, threads: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(per_thread.min(rest.len()));
        parts.push(std::mem::replace(&mut rest, tail));
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            parts.into_iter().map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_whatever_the_threads() {
        for threads in [0, 1, 2, 3, 8, 100] {
            let out = map_on_threads((0..10).collect(), threads, |i| i * 2);
            assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>(), "{threads} threads");
        }
        assert!(map_on_threads(Vec::<u8>::new(), 4, |i| i).is_empty());
    }
}
