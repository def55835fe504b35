//! Merging the profiles of a session's invocations into one Firefox-profiler document.

use serde_json::Value;

/// Why profiles could not be merged (each came from `GuestProfiler`, so this means a
/// profile format this code does not know).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("an invocation's profile is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("an invocation's profile lacks {0}")]
    Missing(&'static str),
}

/// One Firefox-profiler document holding every invocation as its own process track, on one
/// timeline: each profile's times move by the distance between its start and the earliest
/// start, and its library indexes are renumbered into the shared `libs` list.
pub fn merge(parts: &[(u64, &[u8])]) -> Result<Vec<u8>, MergeError> {
    let mut profiles = Vec::with_capacity(parts.len());
    for (invocation, json) in parts {
        let profile: Value = serde_json::from_slice(json)?;
        let start = profile["meta"]["startTime"]
            .as_f64()
            .ok_or(MergeError::Missing("meta.startTime"))?;
        profiles.push((*invocation, start, profile));
    }
    let origin = profiles
        .iter()
        .map(|(_, start, _)| *start)
        .fold(f64::INFINITY, f64::min);
    let mut libs: Vec<Value> = Vec::new();
    let mut threads: Vec<Value> = Vec::new();
    let mut merged: Option<Value> = None;
    for (invocation, start, mut profile) in profiles {
        let own_libs = match profile.get_mut("libs").map(Value::take) {
            Some(Value::Array(own)) => own,
            _ => return Err(MergeError::Missing("libs")),
        };
        let renumber: Vec<usize> = own_libs
            .into_iter()
            .map(|lib| match libs.iter().position(|known| *known == lib) {
                Some(index) => index,
                None => {
                    libs.push(lib);
                    libs.len() - 1
                }
            })
            .collect();
        let own_threads = match profile.get_mut("threads").map(Value::take) {
            Some(Value::Array(own)) => own,
            _ => return Err(MergeError::Missing("threads")),
        };
        for mut thread in own_threads {
            shift_thread(&mut thread, start - origin);
            renumber_libs(&mut thread, &renumber);
            thread["pid"] = Value::String(invocation.to_string());
            thread["tid"] = Value::from(invocation);
            threads.push(thread);
        }
        merged.get_or_insert(profile);
    }
    let mut merged = merged.ok_or(MergeError::Missing("any invocation"))?;
    merged["meta"]["startTime"] = Value::from(origin);
    merged["libs"] = Value::Array(libs);
    merged["threads"] = Value::Array(threads);
    Ok(serde_json::to_vec(&merged)?)
}

/// Moves every time of a thread (milliseconds since its profile's start) by `by` ms.
fn shift_thread(thread: &mut Value, by: f64) {
    let shift = |value: &mut Value| {
        if let Some(ms) = value.as_f64() {
            *value = Value::from(ms + by);
        }
    };
    for key in [
        "registerTime",
        "unregisterTime",
        "processStartupTime",
        "processShutdownTime",
    ] {
        if let Some(value) = thread.get_mut(key) {
            shift(value);
        }
    }
    // Sample times are deltas from the previous sample; only the first is absolute.
    if let Some(first) = thread
        .pointer_mut("/samples/timeDeltas")
        .and_then(Value::as_array_mut)
        .and_then(|deltas| deltas.first_mut())
    {
        shift(first);
    }
    for column in ["/markers/startTime", "/markers/endTime"] {
        if let Some(times) = thread.pointer_mut(column).and_then(Value::as_array_mut) {
            times.iter_mut().for_each(shift);
        }
    }
}

fn renumber_libs(thread: &mut Value, renumber: &[usize]) {
    for column in ["/resourceTable/lib", "/nativeSymbols/libIndex"] {
        let Some(indexes) = thread.pointer_mut(column).and_then(Value::as_array_mut) else {
            continue;
        };
        for index in indexes.iter_mut() {
            if let Some(new) = index.as_u64().and_then(|old| renumber.get(old as usize)) {
                *index = Value::from(*new);
            }
        }
    }
}
